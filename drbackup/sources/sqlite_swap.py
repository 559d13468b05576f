"""Putting a restored SQLite file in place of a live one: refused while a process has the
database (or its -wal/-shm/-journal) open; the live file and its companions moved aside
together (a stale -wal left beside the restore would be replayed over it by the next
connection); the live file's mode, owner and WAL journal mode kept; the result opened read-only
and compared with the snapshot's copy before the restore is reported done."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from drbackup.errors import TargetRefusedError

COMPANIONS = ("-wal", "-shm", "-journal")
ASIDE_MARK = ".before-restore-"
# Bytes 18 and 19 of the header are 2 in a WAL-mode database (1: rollback journal).
WAL_HEADER_OFFSET = 18


@dataclass(frozen=True)
class LiveFile:
    """What is kept of the file being replaced."""
    mode: int
    uid: int
    gid: int
    wal: bool


def companions(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in COMPANIONS]


def holders(paths: list[Path], proc: Path = Path("/proc")) -> list[tuple[int, str]]:
    """The processes (pid, program) with one of `paths` open, found by device and inode."""
    wanted = set()
    for path in paths:
        try:
            info = os.lstat(path)
        except OSError:
            continue
        wanted.add((info.st_dev, info.st_ino))
    found: list[tuple[int, str]] = []
    if not wanted:
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                info = os.stat(fd)
            except OSError:
                continue
            if (info.st_dev, info.st_ino) in wanted:
                try:
                    program = (entry / "comm").read_text().strip()
                except OSError:
                    program = "?"
                found.append((int(entry.name), program))
                break
    return found


def refuse_if_open(into: Path) -> None:
    """Raises TargetRefusedError naming a process that has the database open."""
    found = holders([into, *companions(into)])
    if found:
        pid, program = found[0]
        more = f" and {len(found) - 1} more" if len(found) > 1 else ""
        raise TargetRefusedError(
            f"restore target {into} is open by process {pid} ({program}){more}",
            "stop the application using the database, then run restore-db again; nothing "
            "was changed")


def is_wal(path: Path) -> bool:
    with path.open("rb") as handle:
        header = handle.read(WAL_HEADER_OFFSET + 2)
    return header[WAL_HEADER_OFFSET:WAL_HEADER_OFFSET + 2] == b"\x02\x02"


def live_file(into: Path) -> LiveFile:
    info = os.lstat(into)
    return LiveFile(info.st_mode & 0o7777, info.st_uid, info.st_gid, is_wal(into))


def content_digest(path: Path) -> str:
    """sha256 of the database's .dump (schema and every row), opened read-only."""
    digest = hashlib.sha256()
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        for line in db.iterdump():
            digest.update(line.encode("utf-8", "surrogatepass") + b"\n")
    return digest.hexdigest()


def prepare(partial: Path, live: LiveFile) -> None:
    """Give the new file the live one's journal mode, mode and owner (before the swap)."""
    if live.wal:
        with closing(sqlite3.connect(partial)) as db:
            db.execute("PRAGMA journal_mode=WAL")
    os.chmod(partial, live.mode)
    info = os.lstat(partial)
    if (info.st_uid, info.st_gid) != (live.uid, live.gid):
        try:
            os.chown(partial, live.uid, live.gid)
        except OSError as exc:
            raise TargetRefusedError(
                f"cannot give the restored file the owner of {partial.name[1:]} "
                f"({live.uid}:{live.gid}): {exc.strerror}",
                "run restore-db as root or as the database file's owner; nothing was "
                "changed") from None


def aside_name(into: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = into.with_name(f"{into.name}{ASIDE_MARK}{stamp}")
    candidate, n = base, 1
    while any(p.exists() for p in (candidate, *companions(candidate))):
        n += 1
        candidate = base.with_name(f"{base.name}.{n}")
    return candidate


def swap(partial: Path, into: Path) -> list[Path]:
    """Move the live file and its companions aside (same names + suffixes), then rename the
    new file into place. Returns the moved-aside paths, the database first."""
    refuse_if_open(into)  # again: the restore itself took a while
    aside = aside_name(into)
    moved = []
    for old, new in zip([into, *companions(into)], [aside, *companions(aside)], strict=True):
        if os.path.lexists(old):
            os.rename(old, new)
            moved.append(new)
    os.replace(partial, into)
    return moved


def verification_problem(into: Path, expected_digest: str, wal: bool) -> str | None:
    """Why the file now in place is not the snapshot's database, or None."""
    try:
        with closing(sqlite3.connect(f"file:{into}?mode=ro", uri=True)) as db:
            rows = db.execute("PRAGMA integrity_check").fetchall()
            mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        if not rows or rows[0][0] != "ok":
            return "integrity_check: " + "; ".join(str(r[0]) for r in rows[:5])
        if wal and mode != "wal":
            return f"journal mode is {mode}, not wal"
        if content_digest(into) != expected_digest:
            return "its content differs from the snapshot's copy"
    except sqlite3.Error as exc:
        return str(exc)
    return None
