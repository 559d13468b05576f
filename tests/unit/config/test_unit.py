"""config check against the systemd unit: what ProtectSystem=strict leaves writable, which
credentials LoadCredential= loads, as systemd reads the unit and its drop-ins."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from drbackup.config.unit import DROP_IN, read_only_problem, read_unit, unit_problems

SHIPPED = Path(__file__).resolve().parents[3] / "systemd" / "drbackup.service"


@pytest.fixture
def unit(tmp_path: Path) -> Path:
    copy = tmp_path / "drbackup.service"
    shutil.copy(SHIPPED, copy)
    return copy


def test_the_shipped_unit_is_read_as_systemd_would(unit: Path) -> None:
    settings = read_unit(unit)
    assert settings.protect_system == "strict"
    for writable in ("/var/lib/drbackup/repos", "/var/cache/drbackup", "/run/drbackup", "/tmp/x"):
        assert settings.is_writable(Path(writable)), writable
    assert not settings.is_writable(Path("/srv/backup-disk"))
    assert not settings.is_writable(Path("/var/lib/other"))
    assert set(settings.credentials) == {"offsite.credentials", "planning.password"}


def test_drop_ins_add_paths_and_an_empty_assignment_resets_a_list(unit: Path) -> None:
    drop_ins = unit.parent / "drbackup.service.d"
    drop_ins.mkdir()
    (drop_ins / "10-disk.conf").write_text("[Service]\nReadWritePaths=/srv/backup-disk -/mnt/x\n")
    (drop_ins / "20-creds.conf").write_text(
        "[Service]\nLoadCredential=\nLoadCredential=parks.password:/etc/drbackup/c/parks\n")
    settings = read_unit(unit)
    assert settings.is_writable(Path("/srv/backup-disk/repos"))
    assert settings.is_writable(Path("/mnt/x"))
    assert settings.credentials == {"parks.password": Path("/etc/drbackup/c/parks")}


def test_problems_name_the_line_to_add(unit: Path, tmp_path: Path) -> None:
    settings = read_unit(unit)
    raw = {"agencies": [{"id": "parks",
                         "password_file": "${CREDENTIALS_DIRECTORY}/parks.password"}]}
    problems = dict(unit_problems(settings, raw, {"stores.disk.path": Path("/srv/disk")}))
    assert f"add a drop-in {DROP_IN}" in problems["stores.disk.path"]
    assert "ReadWritePaths=/srv/disk" in problems["stores.disk.path"]
    assert ("LoadCredential=parks.password:/etc/drbackup/credentials/parks.password"
            in problems["agencies[0].password_file"])
    # The shipped example lines name files this machine does not have: systemd would refuse.
    assert "Protocol error" in problems[""]


def test_the_installed_unit_is_checked_by_config_check(unit: Path, tmp_path: Path) -> None:
    """The real CLI: the problems are refused in one line each; once the drop-in and the
    LoadCredential line are there (and their files exist), the config is valid."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "parks.password").write_text("pw\n")
    (creds / "parks.password").chmod(0o600)
    config = tmp_path / "drbackup.toml"
    config.write_text(
        '[daemon]\nstate_dir = "/var/lib/drbackup"\ncache_dir = "/var/cache/drbackup"\n'
        '[stores.disk]\npath = "/srv/disk"\n'
        '[[agencies]]\nid = "parks"\nstore = "disk"\n'
        'password_file = "${CREDENTIALS_DIRECTORY}/parks.password"\n')
    env = {**os.environ, "CREDENTIALS_DIRECTORY": str(creds)}
    argv = [sys.executable, "-m", "drbackup", "config", "check", "--config", str(config),
            "--unit", str(unit)]
    refused = subprocess.run(argv, capture_output=True, text=True, env=env)
    assert refused.returncode == 4, refused.stderr  # ExitCode.CONFIG
    assert "stores.disk.path: /srv/disk is read-only for the service" in refused.stderr
    assert "LoadCredential=parks.password:" in refused.stderr

    drop_ins = unit.parent / "drbackup.service.d"
    drop_ins.mkdir()
    (drop_ins / "local.conf").write_text(
        f"[Service]\nReadWritePaths=/srv/disk\nLoadCredential=\n"
        f"LoadCredential=parks.password:{creds / 'parks.password'}\n")
    accepted = subprocess.run(argv, capture_output=True, text=True, env=env)
    assert accepted.returncode == 0, accepted.stderr


def test_a_read_only_mount_is_named_with_the_drop_in_under_the_unit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real read-only bind mount, as ProtectSystem=strict makes one."""
    store = tmp_path / "disk"
    store.mkdir()
    assert read_only_problem(store / "repos") is None
    done = subprocess.run(["mount", "--bind", "-o", "ro", str(store), str(store)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot make a read-only bind mount here: {done.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(store)], check=True)
        assert "remount it read-write" in (read_only_problem(store / "repos") or "")
        monkeypatch.setenv("INVOCATION_ID", "0" * 32)
        under_unit = read_only_problem(store / "repos") or ""
        assert f"ReadWritePaths={store / 'repos'}" in under_unit and DROP_IN in under_unit
    finally:
        subprocess.run(["umount", str(store)], check=True)
