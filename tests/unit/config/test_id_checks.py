"""Issue #14 hole 6: ids are full matches ('planning\\n' is not 'planning'), and local stores
nested inside one another (one agency's repository inside another's) are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from drbackup.config.loader import ConfigInvalid, parse_config


def _problems(text: str, tmp_path: Path) -> list[str]:
    with pytest.raises(ConfigInvalid) as info:
        parse_config(text, tmp_path / "drbackup.toml")
    assert "\n" not in info.value.one_line()
    return [str(p) for p in info.value.problems]


def _agency(tmp_path: Path, agency_id: str = "planning", store: str = "local",
            source_id: str = "docs") -> str:
    pw = tmp_path / "pw"
    pw.write_text("secret\n")
    pw.chmod(0o600)
    return f"""
[[agencies]]
id = "{agency_id}"
password_file = "{pw}"
store = "{store}"
  [[agencies.sources]]
  id = "{source_id}"
  kind = "directory"
  paths = ["/srv/docs"]
"""


@pytest.mark.parametrize("value", ["planning\n", "planning\r", "\nplanning", "plan\nning",
                                   "planning ", "planning\x00"])
def test_an_id_with_a_newline_or_other_trailer_is_refused(tmp_path: Path, value: str) -> None:
    escaped = value.replace("\n", "\\n").replace("\r", "\\r").replace("\x00", "\\u0000")
    found = _problems(f'[daemon]\nstate_dir = "{tmp_path}/state"\n' +
                      _agency(tmp_path, agency_id=escaped), tmp_path)
    assert any(p.startswith("agencies[0].id") and "not a valid id" in p for p in found), found
    found = _problems(f'[daemon]\nstate_dir = "{tmp_path}/state"\n' +
                      _agency(tmp_path, source_id=escaped), tmp_path)
    assert any("sources[0].id" in p and "not a valid id" in p for p in found), found


def test_local_stores_nested_inside_another_agencys_repository_are_refused(
        tmp_path: Path) -> None:
    text = f"""
[daemon]
state_dir = "{tmp_path}/state"
[stores.outer]
path = "{tmp_path}/repos"
[stores.inner]
path = "{tmp_path}/repos/planning/data"
""" + _agency(tmp_path, store="outer") + _agency(tmp_path, agency_id="roads", store="inner")
    found = _problems(text, tmp_path)
    line = next(p for p in found if "stores.inner.path" in p)
    assert "inside store 'outer'" in line and "repository of agency 'planning'" in line, line


def test_same_path_for_two_stores_and_the_embedded_store_are_refused(tmp_path: Path) -> None:
    text = f"""
[daemon]
state_dir = "{tmp_path}/state"
[stores.other]
path = "{tmp_path}/state/repos/"
""" + _agency(tmp_path, store="local") + _agency(tmp_path, agency_id="roads", store="other")
    found = _problems(text, tmp_path)
    assert any("the same as store" in p for p in found), found


def test_sibling_stores_are_fine(tmp_path: Path) -> None:
    text = f"""
[daemon]
state_dir = "{tmp_path}/state"
[stores.a]
path = "{tmp_path}/repos-a"
[stores.b]
path = "{tmp_path}/repos-ab"
""" + _agency(tmp_path, store="a") + _agency(tmp_path, agency_id="roads", store="b")
    config = parse_config(text, tmp_path / "drbackup.toml")
    assert [a.id for a in config.agencies] == ["planning", "roads"]
