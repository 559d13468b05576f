"""SQLite sources: a consistent copy made with SQLite's online backup API while applications
keep writing, checked with PRAGMA integrity_check, then streamed to restic under the dump guard.

    python -m drbackup.sources.sqlite DATABASE WORKDIR   (what the guard runs)

The restore side writes a new database file from the snapshot and checks it before it is put in
place."""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import drbackup.sources.sqlite_swap as swap
from drbackup.config.models import SqliteSource
from drbackup.errors import SourceMissingError, TargetRefusedError
from drbackup.sources.base import BackupPlan, DumpError
from drbackup.sources.dumps import PrivateDir, dump_plan, python_module
from drbackup.sources.nofollow import LINK_HINT, Identity, entry_refusal, link_problem

FORMAT_SQLITE = "sqlite"
# All pages in one step: the copy holds one read transaction, so it is one consistent state.
# (Stepping would restart whenever another process writes, and might never finish.)
PAGES_PER_STEP = -1
BUSY_TIMEOUT_SECONDS = 60.0
# SQLite opens these beside the database by name, following links: none may be a link.
COMPANION_SUFFIXES = ("-wal", "-shm", "-journal")


def database_problem(database: Path) -> tuple[str | None, Identity | None]:
    """Why the database file (or a -wal/-shm/-journal beside it) cannot be read safely, and
    the database's identity (device, inode) when it can. Links are never followed: the path
    and its companions belong to the agency."""
    problem = link_problem(database)
    if problem is not None:
        return problem, None
    try:
        info = os.lstat(database)
    except OSError:
        return f"{database} does not exist", None
    refusal = entry_refusal(info)
    if refusal is not None:
        return f"{database} {refusal}", None
    for suffix in COMPANION_SUFFIXES:
        companion = database.with_name(database.name + suffix)
        try:
            extra = os.lstat(companion)
        except OSError:
            continue
        refusal = entry_refusal(extra)
        if refusal is not None:
            return f"{companion} {refusal}", None
    return None, Identity.of(info)


def integrity_problem(path: Path) -> str | None:
    """None when PRAGMA integrity_check says ok, else its first finding."""
    try:
        with closing(sqlite3.connect(path)) as db:
            rows = db.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.Error as exc:
        return str(exc)
    if rows and rows[0][0] == "ok":
        return None
    return "; ".join(str(row[0]) for row in rows[:5]) or "no answer"


def consistent_copy(database: Path, copy: Path) -> None:
    """Copy with the online backup API (readers and writers may keep working). Raises
    sqlite3.Error."""
    with closing(sqlite3.connect(database, timeout=BUSY_TIMEOUT_SECONDS)) as src, \
            closing(sqlite3.connect(copy)) as dst:
        src.backup(dst, pages=PAGES_PER_STEP)
        dst.commit()


def copy_and_stream(database: Path, workdir: Path, out: IO[bytes], err: IO[str]) -> int:
    """The guarded command: copy, check, write the copy to out. Exit code 0 or 1."""
    copy = workdir / "copy.sqlite"
    problem, before = database_problem(database)
    if problem is not None:
        print(f"sqlite: {problem}: not backed up", file=err)
        return 1
    try:
        consistent_copy(database, copy)
    except sqlite3.Error as exc:
        print(f"sqlite: copying {database} failed: {exc}", file=err)
        return 1
    problem, after = database_problem(database)
    if problem is not None or after != before:
        copy.unlink(missing_ok=True)
        print(f"sqlite: {database} was replaced while it was copied: not backed up", file=err)
        return 1
    problem = integrity_problem(copy)
    if problem is not None:
        print(f"sqlite: the copy of {database} fails integrity_check: {problem}", file=err)
        return 1
    with copy.open("rb") as handle:
        shutil.copyfileobj(handle, out, 1 << 20)
    out.flush()
    copy.unlink()
    return 0


def plan_sqlite(source: SqliteSource, scratch_dir: Path | None = None) -> list[BackupPlan]:
    """The copy is made in a private directory under scratch_dir (default: the system's temp
    dir); it needs room for one copy of the database. Raises SourceMissingError when the
    database file does not exist."""
    link = link_problem(source.path)
    if link is not None:
        raise SourceMissingError(f"source {source.id!r}: database file {link}; not backed up",
                                 LINK_HINT)
    if not source.path.is_file():
        raise SourceMissingError(f"source {source.id!r}: database file {source.path} does not "
                                 "exist", "fix sources.path; nothing was backed up")
    problem, _identity = database_problem(source.path)
    if problem is not None:
        raise SourceMissingError(f"source {source.id!r}: {problem}; not backed up",
                                 "the database and its -wal/-shm/-journal files must be plain "
                                 "files with one link")
    workdir = PrivateDir("drbackup-sqlite-", scratch_dir)
    command = python_module("drbackup.sources.sqlite", str(source.path), str(workdir.path))
    plan = dump_plan(command, workdir=workdir, name="db", min_size=source.min_size,
                     timeout=source.timeout, stdin_filename=source.path.name, env={},
                     tags=[f"database={source.path.name}", f"format={FORMAT_SQLITE}"],
                     label=f"copy of {source.path}")
    plan.cleanup.append(workdir.cleanup)
    return [plan]


@dataclass(frozen=True)
class SqliteRestoreResult:
    path: Path
    created: bool
    moved_aside: tuple[Path, ...] = ()  # the previous file and its -wal/-shm/-journal


def restore_sqlite(into: Path, feed: Callable[[IO[bytes]], None], *, overwrite: bool = False
                   ) -> SqliteRestoreResult:
    """Write the snapshot's database file to `into`: first beside it, checked with
    integrity_check, then renamed into place. Over an existing database (overwrite): refused
    while a process has it open; it and its -wal/-shm/-journal are moved aside together
    (sqlite_swap); mode, owner and WAL mode are kept; the result is opened and compared with
    the snapshot's copy.

    Raises TargetRefusedError when `into` exists (non-empty) without overwrite, is a link or in
    use, DumpError when the restored file fails a check."""
    into = into.absolute()
    existed = os.path.lexists(into)
    if existed and (not into.is_file() or into.stat().st_size > 0) and not overwrite:
        raise TargetRefusedError(f"restore target {into} exists",
                                 "choose a new file name, or pass --overwrite")
    live = None
    if existed:
        problem, _identity = database_problem(into)
        if problem is not None:
            raise TargetRefusedError(f"restore target {problem}",
                                     "choose a plain file path; nothing was changed")
        swap.refuse_if_open(into)
        live = swap.live_file(into)
    into.parent.mkdir(parents=True, exist_ok=True)
    fd, partial_name = tempfile.mkstemp(prefix=f".{into.name}.", suffix=".partial",
                                        dir=into.parent)
    partial = Path(partial_name)
    moved: list[Path] = []
    try:
        with os.fdopen(fd, "wb") as handle:
            feed(handle)
            handle.flush()
            os.fsync(handle.fileno())
        problem = integrity_problem(partial)
        if problem is not None:
            raise DumpError(f"the restored SQLite file fails integrity_check: {problem}",
                            "try an older snapshot")
        if live is None:
            os.replace(partial, into)
            return SqliteRestoreResult(into, created=True)
        expected = swap.content_digest(partial)
        swap.prepare(partial, live)
        moved = swap.swap(partial, into)
    finally:
        partial.unlink(missing_ok=True)
    problem = swap.verification_problem(into, expected, live.wal)
    if problem is not None:
        where = f" (the previous file is at {moved[0]})" if moved else ""
        raise DumpError(f"the SQLite file restored at {into} is not the snapshot's: "
                        f"{problem}{where}",
                        "stop applications using it and move the previous file back")
    return SqliteRestoreResult(into, created=False, moved_aside=tuple(moved))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m drbackup.sources.sqlite DATABASE WORKDIR", file=sys.stderr)
        return 2
    return copy_and_stream(Path(args[0]), Path(args[1]), sys.stdout.buffer, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
