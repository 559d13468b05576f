"""Config loading: every problem names the file, the key path and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from drbackup.config import ConfigInvalid, parse_config
from drbackup.config.loader import format_location, load_config
from drbackup.errors import ConfigError


def _secret(tmp_path: Path, name: str = "pw", mode: int = 0o600) -> Path:
    path = tmp_path / name
    path.write_text("secret\n")
    path.chmod(mode)
    return path


def _config(tmp_path: Path, body: str) -> str:
    pw = _secret(tmp_path)
    return f"""
[daemon]
state_dir = "{tmp_path}/state"

[[agencies]]
id = "planning"
password_file = "{pw}"
{body}
"""


def problems(text: str, tmp_path: Path) -> list[str]:
    with pytest.raises(ConfigInvalid) as info:
        parse_config(text, tmp_path / "drbackup.toml")
    assert info.value.path == tmp_path / "drbackup.toml"
    assert "\n" not in info.value.one_line()
    return [str(p) for p in info.value.problems]


def test_valid_minimal_config_uses_embedded_local_store(tmp_path: Path) -> None:
    config = parse_config(_config(tmp_path, ""), tmp_path / "c.toml")
    agency = config.agency("planning")
    assert agency.store == "local"
    assert config.store("local").path == tmp_path / "state" / "repos"


def test_relative_source_path_is_named_with_its_key_path(tmp_path: Path) -> None:
    text = _config(tmp_path, """
  [[agencies.sources]]
  id = "docs"
  kind = "directory"
  paths = ["relative/dir"]
""")
    found = problems(text, tmp_path)
    assert any(p.startswith("agencies[0].sources[0].paths[0]") and "absolute" in p
               for p in found), found


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    found = problems(_config(tmp_path, 'retension = "7d"'), tmp_path)
    assert found == ["agencies[0].retension: unknown key (check its spelling and the example "
                     "config)"]


def test_duplicate_agency_and_source_ids(tmp_path: Path) -> None:
    pw = _secret(tmp_path)
    text = f"""
[[agencies]]
id = "a"
password_file = "{pw}"
[[agencies]]
id = "a"
password_file = "{pw}"
"""
    assert any("used twice" in p for p in problems(text, tmp_path))
    text = _config(tmp_path, """
  [[agencies.sources]]
  id = "docs"
  kind = "directory"
  paths = ["/srv"]
  [[agencies.sources]]
  id = "docs"
  kind = "directory"
  paths = ["/srv"]
""")
    assert any("'docs' is used twice" in p for p in problems(text, tmp_path))


def test_unknown_store_name(tmp_path: Path) -> None:
    found = problems(_config(tmp_path, 'store = "nowhere"'), tmp_path)
    assert any("unknown store 'nowhere'" in p for p in found), found


def test_world_readable_password_file_is_refused(tmp_path: Path) -> None:
    loose = _secret(tmp_path, "loose", 0o644)
    text = f"""
[[agencies]]
id = "a"
password_file = "{loose}"
"""
    found = problems(text, tmp_path)
    assert found[0].startswith("agencies[0].password_file")
    assert "0644" in found[0] and "chmod 600" in found[0]


def test_missing_password_file(tmp_path: Path) -> None:
    text = """
[[agencies]]
id = "a"
password_file = "/nonexistent/a.password"
"""
    assert problems(text, tmp_path) == [
        "agencies[0].password_file: /nonexistent/a.password does not exist"]


def test_credentials_directory_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    creds_dir = tmp_path / "creds"
    creds_dir.mkdir()
    _secret(creds_dir, "a.password")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds_dir))
    text = """
[[agencies]]
id = "a"
password_file = "${CREDENTIALS_DIRECTORY}/a.password"
"""
    config = parse_config(text, tmp_path / "c.toml")
    assert config.agencies[0].password_file == creds_dir / "a.password"


def test_s3_store_needs_credentials_and_a_proper_url(tmp_path: Path) -> None:
    text = _config(tmp_path, "") + """
[stores.offsite]
url = "https://no-s3-prefix/bucket"
"""
    found = problems(text, tmp_path)
    assert any(p.startswith("stores.offsite") and "s3:https://" in p for p in found), found


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    found = problems("[daemon\n", tmp_path)
    assert found[0].startswith("not valid TOML")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "absent.toml")
    assert "does not exist" in info.value.one_line()


def test_bad_duration_is_explained(tmp_path: Path) -> None:
    found = problems(_config(tmp_path, 'rpo = "soon"'), tmp_path)
    assert any(p.startswith("agencies[0].rpo") and "not a duration" in p for p in found)


def test_format_location_hides_union_member_names() -> None:
    assert format_location(("agencies", 1, "sources", 0, "directory", "paths")) == \
        "agencies[1].sources[0].paths"
