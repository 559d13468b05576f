"""Helpers for database tests: process command lines (to prove no password is in argv), the
state database's runs, waiting, and small known databases."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from drbackup.engine import RepoTarget, Restic, ResticSettings, Snapshot
from drbackup.state import StateDB
from drbackup.state.db import RunRecord
from tests.support.procs import read_cmdlines


def all_cmdlines() -> list[str]:
    """Every process's command line, arguments joined by spaces."""
    return [" ".join(argv) for argv in read_cmdlines()]


def wait_until(condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition"
               ) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not reached within {timeout}s")


def runs(state_dir: Path, *, agency: str, source: str | None = None, job: str = "backup"
         ) -> list[RunRecord]:
    state = StateDB(state_dir / "state.db")
    try:
        return state.runs(agency=agency, source=source, job=job)
    finally:
        state.close()


def local_snapshots(workspace_state_dir: Path, agency: str, password_file: Path,
                    restic_binary: str = "restic") -> list[Snapshot]:
    """The snapshots of an agency's repository in the embedded local store, read in-process
    (cheaper than another CLI run)."""
    restic = Restic(ResticSettings(binary=restic_binary,
                                   cache_dir=workspace_state_dir.parent / "cache"))
    return restic.snapshots(RepoTarget(str(workspace_state_dir / "repos" / agency),
                                       password_file))


# A small PostgreSQL schema with known row counts, shared by the drill tests.
PERMITS_SCHEMA = """
CREATE TABLE permits (id integer PRIMARY KEY, holder text NOT NULL);
INSERT INTO permits SELECT g, 'holder-' || g FROM generate_series(1, 2000) g;
CREATE TABLE inspections (id integer PRIMARY KEY, permit integer REFERENCES permits (id),
                          note text);
INSERT INTO inspections SELECT g, g % 2000 + 1, md5(g::text) FROM generate_series(1, 500) g;
CREATE TABLE archive (id integer);
"""

# A small MariaDB schema: 3 licences and an empty table.
LICENCES_SCHEMA = ("CREATE TABLE licences (id INT PRIMARY KEY, holder TEXT); "
                   "INSERT INTO licences VALUES (1, 'a'), (2, 'b'), (3, 'c'); "
                   "CREATE TABLE empty_one (id INT);")


def permits_sqlite(path: Path, rows: int) -> Path:
    """A SQLite database with a `permits` table of `rows` rows ('holder 0'...)."""
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE permits (id INTEGER PRIMARY KEY, holder TEXT)")
        connection.executemany("INSERT INTO permits (holder) VALUES (?)",
                               [(f"holder {i}",) for i in range(rows)])
    connection.close()
    return path


def permits_rows(path: Path) -> tuple[int, str]:
    """(row count, greatest holder) of a permits_sqlite database."""
    with sqlite3.connect(path) as connection:
        count, holder = connection.execute("SELECT count(*), max(holder) FROM permits").fetchone()
    connection.close()
    return int(count), str(holder)
