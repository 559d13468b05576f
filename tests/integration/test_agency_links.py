"""Agency against agency, links (#14 hole 1, and hole 6's drop-folder items): whoever holds one
agency's folders puts symlinks, hard links, fifos, device files and comma names where drbackup
reads, and tries to get another agency's secrets into its own repository. Each test makes a real
backup with real restic and then reads every byte of the attacker's repository back."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from drbackup.config import load_config
from drbackup.errors import ExitCode, SourceMissingError
from drbackup.jobs.backup import run_backup
from drbackup.jobs.runtime import Runtime
from tests.support.dbcheck import local_snapshots
from tests.support.hostile import repository_bytes
from tests.support.workspace import Workspace

SECRET = b"HEALTH-PATIENT-RECORD-7f3a9c"


def victim(workspace: Workspace, tmp_path: Path) -> Path:
    """Agency health: a data directory holding a secret file and a SQLite database."""
    workspace.add_agency("health")
    data = tmp_path / "health"
    data.mkdir()
    (data / "records.txt").write_bytes(SECRET)
    (data / "current").mkdir()
    (data / "current" / "records.txt").write_bytes(SECRET)
    with sqlite3.connect(data / "registry.sqlite") as db:
        db.execute("CREATE TABLE patients (name TEXT)")
        db.execute("INSERT INTO patients VALUES (?)", (SECRET.decode(),))
    workspace.add_directory_source("health", "records", [data])
    return data


def drop_folder(workspace: Workspace, tmp_path: Path) -> Path:
    """Agency finance (the attacker): a drop folder with one honest, marked dump."""
    drops = tmp_path / "finance-drops"
    drops.mkdir()
    (drops / "ledger.dump").write_bytes(b"honest ledger dump\n" * 50)
    (drops / "ledger.dump.done").write_bytes(b"")
    workspace.add_agency("finance")
    workspace.add_source("finance", "dumps", "dumpdir", path=str(drops), marker=True)
    return drops


def mark(path: Path) -> None:
    path.with_name(path.name + ".done").write_bytes(b"")


def backup_finance(workspace: Workspace) -> subprocess.CompletedProcess[str]:
    workspace.cli("repo", "init", check=True)
    return workspace.cli("backup", "--agency", "finance", "--source", "dumps")


def test_symlink_in_drop_folder_to_another_agencys_password_file_is_skipped(
        workspace: Workspace, tmp_path: Path, restic_binary: str) -> None:
    victim(workspace, tmp_path)
    drops = drop_folder(workspace, tmp_path)
    health_password = Path(workspace.agency("health")["password_file"])
    (drops / "evil.dump").symlink_to(health_password)
    mark(drops / "evil.dump")
    (drops / "shadow.dump").symlink_to("/etc/shadow")
    mark(drops / "shadow.dump")

    result = backup_finance(workspace)

    assert result.returncode == 0, result.stderr
    stored = repository_bytes(workspace, "finance", restic_binary)
    assert b"honest ledger dump" in stored
    assert workspace.passwords["health"].encode() not in stored
    snapshots = local_snapshots(workspace.state_dir, "finance",
                                Path(workspace.agency("finance")["password_file"]))
    assert [s.tag("file") for s in snapshots] == ["ledger.dump"]
    assert "'evil.dump' not backed up: it is a symlink" in result.stderr
    assert "'shadow.dump' not backed up: it is a symlink" in result.stderr


def test_hard_link_in_drop_folder_to_another_agencys_file_is_skipped(
        workspace: Workspace, tmp_path: Path, restic_binary: str) -> None:
    data = victim(workspace, tmp_path)
    drops = drop_folder(workspace, tmp_path)
    os.link(data / "records.txt", drops / "evil.dump")
    mark(drops / "evil.dump")

    result = backup_finance(workspace)

    assert result.returncode == 0, result.stderr
    stored = repository_bytes(workspace, "finance", restic_binary)
    assert b"honest ledger dump" in stored and SECRET not in stored
    assert "'evil.dump' not backed up: it has 2 hard links" in result.stderr


def test_fifo_and_device_file_in_drop_folder_are_skipped_and_logged(
        workspace: Workspace, tmp_path: Path, restic_binary: str) -> None:
    victim(workspace, tmp_path)
    drops = drop_folder(workspace, tmp_path)
    os.mkfifo(drops / "pipe.dump")
    mark(drops / "pipe.dump")
    device = drops / "zero.dump"
    try:
        os.mknod(device, 0o600 | 0o020000, os.makedev(1, 5))  # like /dev/zero
    except PermissionError:
        device.symlink_to("/dev/zero")  # not root: a link to a device instead
    mark(device)

    result = backup_finance(workspace)

    assert result.returncode == 0, result.stderr
    assert b"honest ledger dump" in repository_bytes(workspace, "finance", restic_binary)
    assert "'pipe.dump' not backed up: it is a fifo" in result.stderr
    assert "'zero.dump' not backed up: it is a" in result.stderr


def test_comma_in_drop_file_name_injects_no_tag(workspace: Workspace, tmp_path: Path,
                                                restic_binary: str) -> None:
    victim(workspace, tmp_path)
    drops = drop_folder(workspace, tmp_path)
    hostile = drops / "x.dump,agency=health,source=records"
    hostile.write_bytes(b"attacker's fake health snapshot\n")
    mark(hostile)

    result = backup_finance(workspace)

    assert result.returncode == 0, result.stderr
    snapshots = local_snapshots(workspace.state_dir, "finance",
                                Path(workspace.agency("finance")["password_file"]))
    assert snapshots and all(s.tags.count("agency=finance") == 1 for s in snapshots)
    assert not any("agency=health" in s.tags or "source=records" in s.tags for s in snapshots)
    assert b"attacker's fake" not in repository_bytes(workspace, "finance", restic_binary)
    assert "has a comma in its name" in result.stderr


def test_symlinked_drop_folder_is_refused_by_config_check_and_by_the_backup(
        workspace: Workspace, tmp_path: Path, restic_binary: str) -> None:
    data = victim(workspace, tmp_path)
    drops = drop_folder(workspace, tmp_path)
    (data / "records.txt.dump").write_bytes(SECRET)
    mark(data / "records.txt.dump")
    workspace.cli("repo", "init", check=True)
    config = load_config(workspace.write())  # as the daemon holds it, before the link
    shutil.rmtree(drops)
    drops.symlink_to(data)

    checked = workspace.cli("config", "check")
    assert checked.returncode == ExitCode.CONFIG
    assert f"{drops} is a symlink" in checked.stderr and "configure the real path" in \
        checked.stderr

    rt = Runtime.create(config)
    try:
        with pytest.raises(SourceMissingError, match=r"drop folder .* is a symlink"):
            run_backup(rt, config.agency("finance"), config.agency("finance").source("dumps"))
    finally:
        rt.close()
    assert SECRET not in repository_bytes(workspace, "finance", restic_binary)


def test_symlink_above_a_directory_source_path_is_refused_at_backup_time(
        workspace: Workspace, tmp_path: Path, restic_binary: str) -> None:
    victim(workspace, tmp_path)
    own = tmp_path / "finance-home"
    (own / "docs" / "current").mkdir(parents=True)
    (own / "docs" / "current" / "own.txt").write_bytes(b"finance's own document\n")
    workspace.add_agency("finance")
    workspace.add_directory_source("finance", "docs", [own / "docs" / "current"])
    workspace.cli("repo", "init", check=True)
    config = load_config(workspace.write())
    # The agency owns finance-home: it swaps docs for a link into health's data.
    shutil.rmtree(own / "docs")
    (own / "docs").symlink_to(tmp_path / "health")

    checked = workspace.cli("config", "check")
    assert checked.returncode == ExitCode.CONFIG
    assert f"goes through a symlink: {own / 'docs'}" in checked.stderr

    rt = Runtime.create(config)
    try:
        with pytest.raises(SourceMissingError, match="goes through a symlink") as raised:
            run_backup(rt, config.agency("finance"), config.agency("finance").source("docs"))
    finally:
        rt.close()
    assert "\n" not in raised.value.one_line()
    assert SECRET not in repository_bytes(workspace, "finance", restic_binary)


def test_sqlite_path_that_is_a_symlink_is_refused(workspace: Workspace, tmp_path: Path,
                                                 restic_binary: str) -> None:
    data = victim(workspace, tmp_path)
    own = tmp_path / "finance-db"
    own.mkdir()
    database = own / "ledger.sqlite"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE ledger (entry TEXT)")
        db.executemany("INSERT INTO ledger VALUES (?)", [("honest",)] * 100)
    workspace.add_agency("finance")
    workspace.add_source("finance", "db", "sqlite", path=str(database))
    workspace.cli("repo", "init", check=True)
    config = load_config(workspace.write())
    database.unlink()
    database.symlink_to(data / "registry.sqlite")

    rt = Runtime.create(config)
    try:
        with pytest.raises(SourceMissingError, match="is a symlink"):
            run_backup(rt, config.agency("finance"), config.agency("finance").source("db"))
    finally:
        rt.close()
    assert SECRET not in repository_bytes(workspace, "finance", restic_binary)
    assert local_snapshots(workspace.state_dir, "finance",
                           Path(workspace.agency("finance")["password_file"])) == []
