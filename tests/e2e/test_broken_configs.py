"""A corpus of hand-written broken configs, each through the real CLI: `drbackup --config X config
check` exits 4 (CONFIG) with one line per problem naming the key path, never a traceback; any
other verb refuses the same config with exactly one line.

Each file in tests/data/broken-configs/ states what it expects in `# expect: <fragment>` header
lines: all of its fragments must appear on one line of the output. Secret files are named as
${DRB_CORPUS_SECRETS}/..., which the loader expands (as systemd's ${CREDENTIALS_DIRECTORY})."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from drbackup.cli.main import main
from drbackup.errors import ExitCode

CORPUS = Path(__file__).parent.parent / "data" / "broken-configs"
FILES = sorted(CORPUS.glob("*.toml"))


def expectations(path: Path) -> list[str]:
    lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    return [line.removeprefix("# expect:").strip() for line in lines
            if line.startswith("# expect:")]


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus-secrets")
    for name, mode in (("good.password", 0o600), ("loose.password", 0o644),
                       ("good.credentials", 0o600)):
        (root / name).write_text("[default]\naws_access_key_id = k\naws_secret_access_key = s\n"
                                 if name.endswith("credentials") else "corpus-password\n")
        (root / name).chmod(mode)
    (root / "adir").mkdir()
    return root


@pytest.fixture(scope="module")
def check_results(secrets_dir: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """`config check` of every corpus file, four at a time (each is a fresh interpreter)."""
    env = {**os.environ, "DRB_CORPUS_SECRETS": str(secrets_dir), "HOME": str(secrets_dir)}
    env.pop("DRB_SURELY_NOT_SET", None)

    def check(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "drbackup", "--config", str(path), "config", "check"],
            capture_output=True, text=True, env=env, timeout=120, check=False)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip([p.name for p in FILES], pool.map(check, FILES), strict=True))


def test_corpus_is_large_and_annotated() -> None:
    assert len(FILES) >= 30
    for path in FILES:
        assert expectations(path), f"{path.name} has no '# expect:' line"


@pytest.mark.parametrize("name", [p.name for p in FILES])
def test_config_check_names_the_problem(
        name: str, check_results: dict[str, subprocess.CompletedProcess[str]]) -> None:
    result = check_results[name]
    path = CORPUS / name
    assert result.returncode == ExitCode.CONFIG, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines and lines[0].startswith("drbackup: error: config ")
    wanted = expectations(path)
    matching = [line for line in lines if all(fragment in line for fragment in wanted)]
    assert matching, f"{name}: no single line holds {wanted!r}:\n{result.stderr}"
    if len(lines) > 1:  # the per-problem form: a header, then "  <file>: <key path>: <problem>"
        assert lines[0].endswith(f"{len(lines) - 1} problem(s)")
        assert all(line.startswith(f"  {path}: ") for line in lines[1:]), result.stderr


def test_other_verbs_refuse_with_one_line(secrets_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Any verb that needs the config stops at it: exit 4 and exactly one stderr line."""
    monkeypatch.setenv("DRB_CORPUS_SECRETS", str(secrets_dir))
    monkeypatch.delenv("DRB_SURELY_NOT_SET", raising=False)
    for path in FILES:
        code = main(["--config", str(path), "snapshots"])
        captured = capsys.readouterr()
        assert code == ExitCode.CONFIG, (path.name, captured.err)
        lines = captured.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("drbackup: error: config "), (
            path.name, captured.err)
        assert "Traceback" not in captured.err
