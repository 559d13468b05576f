"""The pieces of an in-place SQLite restore: who holds the file open (by inode, through
/proc/<pid>/fd), where the old files go (never over an earlier restore's), which header is WAL."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

from drbackup.sources.sqlite_swap import aside_name, companions, holders, is_wal, swap


def test_holders_are_found_by_inode_and_named(tmp_path: Path) -> None:
    database = tmp_path / "a.sqlite"
    database.write_bytes(b"x")
    proc = tmp_path / "proc"
    (proc / "4242" / "fd").mkdir(parents=True)
    (proc / "4242" / "comm").write_text("registryd\n")
    (proc / "4242" / "fd" / "3").symlink_to(database)
    (proc / "17" / "fd").mkdir(parents=True)
    (proc / "17" / "fd" / "3").symlink_to(tmp_path / "gone")  # dangling: skipped
    (proc / "self").mkdir()
    assert holders([database, *companions(database)], proc) == [(4242, "registryd")]
    assert holders([tmp_path / "absent"], proc) == []


def test_aside_names_never_reuse_an_earlier_one(tmp_path: Path) -> None:
    database = tmp_path / "a.sqlite"
    first = aside_name(database)
    assert first.name.startswith("a.sqlite.before-restore-")
    Path(f"{first}-wal").write_bytes(b"earlier")
    assert aside_name(database) != first


def test_swap_moves_the_file_and_its_companions_together(tmp_path: Path) -> None:
    database = tmp_path / "a.sqlite"
    for path, content in ((database, b"old"), (Path(f"{database}-wal"), b"wal"),
                          (Path(f"{database}-shm"), b"shm")):
        path.write_bytes(content)
    partial = tmp_path / ".a.sqlite.partial"
    partial.write_bytes(b"new")
    moved = swap(partial, database)
    assert [p.read_bytes() for p in moved] == [b"old", b"wal", b"shm"]
    assert database.read_bytes() == b"new"
    assert not os.path.lexists(f"{database}-wal") and not partial.exists()


def test_wal_is_read_from_the_header(tmp_path: Path) -> None:
    wal, rollback = tmp_path / "w.sqlite", tmp_path / "r.sqlite"
    for path, mode in ((wal, "WAL"), (rollback, "DELETE")):
        with closing(sqlite3.connect(path)) as db:
            db.execute(f"PRAGMA journal_mode={mode}")
            db.execute("CREATE TABLE t (x)")
            db.commit()
    assert is_wal(wal) and not is_wal(rollback)
