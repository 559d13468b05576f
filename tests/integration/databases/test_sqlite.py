"""SQLite sources: backed up while another process keeps writing; the restored file passes
integrity_check and holds a prefix-consistent state (rows 1..n and a counter equal to n)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing
from pathlib import Path

from drbackup.errors import ExitCode
from tests.support.dbcheck import local_snapshots, runs, wait_until
from tests.support.workspace import Workspace

WRITER = textwrap.dedent("""
    import os, sqlite3, sys
    db = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    n = db.execute("SELECT value FROM counter").fetchone()[0]
    while True:
        n += 1
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO log (n, payload) VALUES (?, ?)", (n, os.urandom(512)))
        db.execute("UPDATE counter SET value = ?", (n,))
        db.execute("COMMIT")
""")


def count(path: Path) -> int:
    with closing(sqlite3.connect(path, timeout=60)) as db:
        return int(db.execute("SELECT value FROM counter").fetchone()[0])


def test_backup_while_writing_restores_a_consistent_prefix(workspace: Workspace,
                                                           tmp_path: Path) -> None:
    database = tmp_path / "registry.sqlite"
    with closing(sqlite3.connect(database)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE log (n INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
        db.execute("CREATE TABLE counter (value INTEGER NOT NULL)")
        db.execute("INSERT INTO counter VALUES (0)")
        db.executemany("INSERT INTO log VALUES (?, randomblob(2048))",
                       [(n,) for n in range(1, 4001)])
        db.execute("UPDATE counter SET value = 4000")
        db.commit()
    workspace.add_agency("records")
    workspace.add_source("records", "registry", "sqlite", path=str(database))
    workspace.cli("repo", "init", check=True)

    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(database)])
    try:
        wait_until(lambda: count(database) > 4200, what="the writer writing")
        at_start = count(database)
        workspace.cli("backup", "--agency", "records", check=True)
        at_end = count(database)
    finally:
        writer.kill()
        writer.wait()
    assert at_end > at_start, "the writer must have been writing during the backup"

    [snapshot] = local_snapshots(workspace.state_dir, "records",
                                 Path(workspace.agency("records")["password_file"]))
    assert {"kind=sqlite", "format=sqlite", "database=registry.sqlite"} <= set(snapshot.tags)
    [run] = runs(workspace.state_dir, agency="records", source="registry")
    assert run.details["dump_bytes"] > 8_000_000

    restored = tmp_path / "restored" / "registry.sqlite"
    workspace.cli("restore-db", "--agency", "records", "--source", "registry",
                  "--into", str(restored), "--yes", check=True)
    with closing(sqlite3.connect(restored)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        value = db.execute("SELECT value FROM counter").fetchone()[0]
        rows, low, high = db.execute("SELECT count(*), min(n), max(n) FROM log").fetchone()
    assert at_start <= value <= at_end
    assert (rows, low, high) == (value, 1, value)

    again = workspace.cli("restore-db", "--agency", "records", "--source", "registry",
                          "--into", str(restored), "--yes")
    assert again.returncode == ExitCode.TARGET_REFUSED
    # Scripts must say --yes to replace a database: no prompt without a terminal.
    unconfirmed = workspace.cli("restore-db", "--agency", "records", "--source", "registry",
                                "--into", str(restored), "--overwrite")
    assert unconfirmed.returncode == ExitCode.TARGET_REFUSED
    assert "pass --yes" in unconfirmed.stderr


def test_missing_database_file_is_an_error(workspace: Workspace, tmp_path: Path) -> None:
    workspace.add_agency("records")
    workspace.add_source("records", "registry", "sqlite", path=str(tmp_path / "absent.sqlite"))
    workspace.cli("repo", "init", check=True)
    result = workspace.cli("backup", "--agency", "records")
    assert result.returncode == ExitCode.SOURCE_MISSING
    assert "does not exist" in result.stderr
    assert local_snapshots(workspace.state_dir, "records",
                           Path(workspace.agency("records")["password_file"])) == []


# Deletes half the rows and writes one, then stays open (prints "ready") until stdin closes, and
# leaves without a checkpoint: the -wal/-shm stay beside the database as after a crash.
AFTER_BACKUP = textwrap.dedent("""
    import os, sqlite3, sys
    db = sqlite3.connect(sys.argv[1], isolation_level=None)
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("DELETE FROM people WHERE id % 2 = 0")
    db.execute("INSERT INTO people VALUES (100001, 'written after the backup')")
    print("ready", flush=True)
    sys.stdin.read()
    os._exit(0)
""")


def make_people(database: Path, rows: int) -> list[str]:
    """A WAL-mode database of `rows` people, mode 0644; its .dump lines."""
    with closing(sqlite3.connect(database)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        db.executemany("INSERT INTO people VALUES (?, ?)",
                       [(n, f"居民 {n}") for n in range(1, rows + 1)])
        db.commit()
        dump = list(db.iterdump())
    database.chmod(0o644)
    return dump


def hold_open(database: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", AFTER_BACKUP, str(database)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
    return holder


def test_overwrite_in_place_replaces_the_wal_too(workspace: Workspace, tmp_path: Path) -> None:
    database = tmp_path / "people.sqlite"
    expected = make_people(database, 10_000)
    workspace.add_agency("records")
    workspace.add_source("records", "people", "sqlite", path=str(database))
    workspace.cli("repo", "init", check=True)
    workspace.cli("backup", "--agency", "records", check=True)
    holder = hold_open(database)
    holder.communicate("")  # exits without a checkpoint: its changes live only in the -wal
    assert (tmp_path / "people.sqlite-wal").stat().st_size > 0
    old = {suffix: (tmp_path / f"people.sqlite{suffix}").read_bytes()
           for suffix in ("", "-wal", "-shm")}

    result = workspace.cli("restore-db", "--agency", "records", "--source", "people",
                           "--into", str(database), "--overwrite", "--yes", check=True)

    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM people").fetchone()[0] == 10_000
        assert list(db.iterdump()) == expected
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert database.stat().st_mode & 0o7777 == 0o644
    [aside] = sorted(tmp_path.glob("people.sqlite.before-restore-*[0-9Z]"))
    assert str(aside) in result.stdout
    for suffix, content in old.items():
        assert Path(f"{aside}{suffix}").read_bytes() == content
    with closing(sqlite3.connect(f"file:{aside}?mode=ro", uri=True)) as db:  # nothing lost
        assert db.execute("SELECT count(*) FROM people").fetchone()[0] == 5_001


def test_overwrite_refuses_a_database_in_use(workspace: Workspace, tmp_path: Path) -> None:
    database = tmp_path / "people.sqlite"
    make_people(database, 100)
    workspace.add_agency("records")
    workspace.add_source("records", "people", "sqlite", path=str(database))
    workspace.cli("repo", "init", check=True)
    workspace.cli("backup", "--agency", "records", check=True)
    holder = hold_open(database)
    try:
        result = workspace.cli("restore-db", "--agency", "records", "--source", "people",
                               "--into", str(database), "--overwrite", "--yes")
    finally:
        holder.communicate("")
    assert result.returncode == ExitCode.TARGET_REFUSED
    assert f"process {holder.pid} (python" in result.stderr
    assert not list(tmp_path.glob("*before-restore*"))
    with closing(sqlite3.connect(database)) as db:
        assert db.execute("SELECT count(*) FROM people").fetchone()[0] == 51
