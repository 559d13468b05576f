"""The state database (SQLite, WAL): every run of every job, and small persistent values.

It is the record metrics and reports read after a restart, so it is written by jobs as they start
and finish. A run left "running" by a crash is closed as "interrupted" as soon as its process is
known to be gone (each run records its owner: drbackup/state/owner.py): when the state database
is opened, by every scrape, and at the daemon's start. A run
whose end could not be written (a full disk) is kept in memory and written by the next
transaction that succeeds, so a long-running daemon does not show it running for ever.
"""

from __future__ import annotations

import errno
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drbackup.errors import StateError
from drbackup.state.owner import owner_alive, this_process
from drbackup.state.schema import MIGRATIONS

RESULTS = ("running", "success", "warning", "failed", "interrupted", "skipped")


@dataclass(frozen=True)
class RunRecord:
    id: int
    job: str
    agency: str
    source: str | None
    store: str | None
    trigger: str
    started_at: float
    finished_at: float | None
    result: str
    snapshot_id: str | None = None
    files_new: int | None = None
    files_changed: int | None = None
    files_unmodified: int | None = None
    files_unreadable: int | None = None
    bytes_added: int | None = None
    bytes_processed: int | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.started_at

    @property
    def succeeded(self) -> bool:
        return self.result in ("success", "warning")


@dataclass(frozen=True)
class RunCounts:
    """Figures a finished backup reports; all optional."""

    snapshot_id: str | None = None
    files_new: int | None = None
    files_changed: int | None = None
    files_unmodified: int | None = None
    files_unreadable: int | None = None
    bytes_added: int | None = None
    bytes_processed: int | None = None


_FINISH_SQL = (
    "UPDATE runs SET finished_at = ?, result = ?, snapshot_id = ?, files_new = ?, "
    "files_changed = ?, files_unmodified = ?, files_unreadable = ?, bytes_added = ?, "
    "bytes_processed = ?, error = ?, details = ? WHERE id = ?")

_COLUMNS = ("id, job, agency, source, store, trigger, started_at, finished_at, result, "
            "snapshot_id, files_new, files_changed, files_unmodified, files_unreadable, "
            "bytes_added, bytes_processed, error, details")


def _record(row: tuple[Any, ...]) -> RunRecord:
    details = json.loads(row[17]) if row[17] else {}
    return RunRecord(*row[:17], details=details)  # type: ignore[misc]


class StateDB:
    """Thread-safe access to the state database; one connection guarded by a lock."""

    def __init__(self, path: Path):
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False,
                                         isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=30000")
        except (OSError, sqlite3.Error) as exc:
            full = "disk is full" in str(exc) or getattr(exc, "errno", None) == errno.ENOSPC
            raise StateError(f"cannot open the state database {path}: {exc}",
                             "free disk space under daemon.state_dir" if full else
                             "check daemon.state_dir exists and is writable by this user"
                             ) from None
        self._lock = threading.RLock()
        # Ends of runs that could not be written (run id -> UPDATE parameters).
        self._unwritten_finishes: dict[int, tuple[Any, ...]] = {}
        self._migrate()
        # Closed as the database opens, so no reader counts them; the daemon's start still
        # learns of them (interrupt_unfinished_runs) to unlock their repositories.
        self._closed_at_open: list[RunRecord] = []
        with suppress(StateError):  # a write: on a full disk opening must still work
            self._closed_at_open = self.close_dead_runs()

    def close(self) -> None:
        with self._lock:
            self._write_unwritten_finishes()
            self._conn.close()

    def _write_unwritten_finishes(self) -> None:
        """Write ends of runs an earlier failure (a full disk) kept in memory; on failure they
        stay for the next attempt. Called with the lock held, outside any transaction."""
        if not self._unwritten_finishes or self._conn.in_transaction:
            return
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            for params in self._unwritten_finishes.values():
                # Only if still open: nothing else closed it meanwhile.
                self._conn.execute(_FINISH_SQL + " AND result = 'running'", params)
            self._conn.execute("COMMIT")
        except sqlite3.Error:
            if self._conn.in_transaction:
                with suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
            return
        self._unwritten_finishes.clear()

    @property
    def unwritten_finishes(self) -> int:
        """Runs whose end is known but not yet written (the disk was full)."""
        with self._lock:
            return len(self._unwritten_finishes)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._write_unwritten_finishes()
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    # On a full disk the rollback itself may fail; the first error is the news.
                    with suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                raise StateError(f"state database {self.path}: {exc}",
                                 "check free disk space under daemon.state_dir") from None
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StateError(f"state database {self.path}: {exc}",
                                 "check the state directory") from None

    def _migrate(self) -> None:
        with self._transaction() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            current = row[0] if row else 0
            if current > len(MIGRATIONS):
                raise StateError(
                    f"state database {self.path} has schema {current}, newer than this drbackup "
                    f"({len(MIGRATIONS)})", "upgrade drbackup or use another state_dir")
            for script in MIGRATIONS[current:]:
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            if row is None:
                conn.execute("INSERT INTO schema_version VALUES (?)", (len(MIGRATIONS),))
            else:
                conn.execute("UPDATE schema_version SET version = ?", (len(MIGRATIONS),))

    @property
    def schema_version(self) -> int:
        return int(self._query("SELECT version FROM schema_version")[0][0])

    # -- runs -------------------------------------------------------------------------------

    def start_run(self, job: str, agency: str, *, source: str | None = None,
                  store: str | None = None, trigger: str = "cli",
                  started_at: float | None = None) -> int:
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO runs (job, agency, source, store, trigger, started_at, result, "
                "owner) VALUES (?, ?, ?, ?, ?, ?, 'running', ?)",
                (job, agency, source, store, trigger, started_at or time.time(),
                 this_process()))
            return int(cursor.lastrowid or 0)

    def finish_run(self, run_id: int, result: str, *, counts: RunCounts | None = None,
                   error: str | None = None, details: Mapping[str, Any] | None = None,
                   finished_at: float | None = None) -> None:
        if result not in RESULTS or result == "running":
            raise ValueError(f"not a final result: {result}")
        counts = counts or RunCounts()
        params = (finished_at or time.time(), result, counts.snapshot_id, counts.files_new,
                  counts.files_changed, counts.files_unmodified, counts.files_unreadable,
                  counts.bytes_added, counts.bytes_processed, error,
                  json.dumps(dict(details), sort_keys=True) if details else None, run_id)
        try:
            with self._transaction() as conn:
                conn.execute(_FINISH_SQL, params)
        except StateError:
            # Kept: the next transaction that works writes it (the caller still gets the error).
            with self._lock:
                self._unwritten_finishes[run_id] = params
            raise

    def abort_run(self, run_id: int, exc: BaseException, *,
                  details: Mapping[str, Any] | None = None) -> None:
        """Close a run that an unexpected exception ended: Ctrl-C is an interruption,
        anything else a failure, with the exception named."""
        if isinstance(exc, KeyboardInterrupt):
            # A StopSignal (the CLI's SIGTERM/SIGHUP) carries the signal's name.
            self.finish_run(run_id, "interrupted",
                            error=f"interrupted ({str(exc) or 'Ctrl-C or SIGINT'})",
                            details=details)
            return
        self.finish_run(run_id, "failed", error=f"{exc.__class__.__name__}: {exc}",
                        details=details)

    def interrupt_unfinished_runs(self, reason: str = "drbackup stopped before the run ended"
                                  ) -> list[RunRecord]:
        """Close runs a crash left open (at the daemon's start); returns them as they were.
        A run whose process still runs (a one-shot command started beside the daemon) stays
        open; a run of an older drbackup, which recorded no owner, is closed."""
        me = this_process()  # an earlier daemon in this same process (tests) ran those
        closed, self._closed_at_open = self._closed_at_open, []
        return closed + self._close_runs(
            lambda owner: owner is None or owner == me or not owner_alive(owner), reason)

    def close_dead_runs(self) -> list[RunRecord]:
        """Close runs whose process is gone (SIGKILL, the OOM killer, a reboot): `status`,
        `report` and `drbackup_jobs_running` must not count them as running."""
        return self._close_runs(
            lambda owner: owner is not None and not owner_alive(owner),
            "interrupted (its process ended without closing the run: killed, e.g. SIGKILL, "
            "the OOM killer or a reboot)")

    def _close_runs(self, dead: Callable[[str | None], bool], reason: str) -> list[RunRecord]:
        open_runs = self._query("SELECT id, owner FROM runs WHERE result = 'running'")
        ids = [run_id for run_id, owner in open_runs if dead(owner)]
        if not ids:
            return []
        marks = ", ".join("?" * len(ids))
        with self._transaction() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM runs WHERE result = 'running' "  # noqa: S608
                f"AND id IN ({marks})", ids).fetchall()
            conn.execute(
                "UPDATE runs SET result = 'interrupted', finished_at = ?, error = ? "  # noqa: S608
                f"WHERE result = 'running' AND id IN ({marks})", (time.time(), reason, *ids))
        return [_record(row) for row in rows]

    def run(self, run_id: int) -> RunRecord | None:
        rows = self._query(f"SELECT {_COLUMNS} FROM runs WHERE id = ?", (run_id,))  # noqa: S608
        return _record(rows[0]) if rows else None

    def runs(self, *, agency: str | None = None, source: str | None = None,
             job: str | None = None, results: tuple[str, ...] = (), since: float | None = None,
             limit: int = 1000, newest_first: bool = True) -> list[RunRecord]:
        clauses: list[str] = []
        params: list[object] = []
        for column, value in (("agency", agency), ("source", source), ("job", job)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if results:
            clauses.append(f"result IN ({','.join('?' * len(results))})")
            params += list(results)
        if since is not None:
            clauses.append("started_at >= ?")
            params.append(since)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "DESC" if newest_first else "ASC"
        rows = self._query(
            f"SELECT {_COLUMNS} FROM runs {where} ORDER BY started_at {order}, id {order} "  # noqa: S608
            "LIMIT ?", (*params, limit))
        return [_record(row) for row in rows]

    def runs_after(self, after_id: int, *, limit: int = 100_000) -> list[RunRecord]:
        """Runs with an id above `after_id`, in id order (a primary-key range scan): lets a
        reader such as the metrics collector fold new runs in incrementally."""
        rows = self._query(
            f"SELECT {_COLUMNS} FROM runs WHERE id > ? ORDER BY id LIMIT ?",  # noqa: S608
            (after_id, limit))
        return [_record(row) for row in rows]

    def last_run(self, *, agency: str, job: str, source: str | None = None,
                 results: tuple[str, ...] = ()) -> RunRecord | None:
        found = self.runs(agency=agency, source=source, job=job, results=results, limit=1)
        return found[0] if found else None

    # -- small values -----------------------------------------------------------------------

    def get_value(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM kv WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def get_json_object(self, key: str) -> dict[str, object] | None:
        """The small value at `key` when it is a JSON object; None when absent or not one (a
        value written by an older or damaged build is treated as never written)."""
        raw = self.get_value(key)
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def set_value(self, key: str, value: str) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at", (key, value, time.time()))

    def increment_value(self, key: str, *, floor: int = 0) -> int:
        """Store and return max(the integer at `key` + 1, floor), atomically across processes
        (the daemon and a one-shot CLI may both count). A missing or non-integer value counts
        as 0."""
        with self._transaction() as conn:
            row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
            try:
                current = int(row[0]) if row else 0
            except (TypeError, ValueError):
                current = 0
            value = max(current + 1, floor)
            conn.execute(
                "INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at", (key, str(value), time.time()))
        return value

    def values_with_prefix(self, prefix: str) -> dict[str, str]:
        """Every kv value whose key starts with `prefix` (an indexed range scan)."""
        rows = self._query("SELECT key, value FROM kv WHERE key >= ? AND key < ?",
                           (prefix, prefix + "\uffff"))
        return {str(key): str(value) for key, value in rows}

    # -- tables of other state modules (state/guard.py) --------------------------------------

    def write(self, statements: list[tuple[str, tuple[Any, ...]]]) -> int:
        """Run statements in one transaction; the last one's row id (for an INSERT)."""
        with self._transaction() as conn:
            last = 0
            for sql, params in statements:
                last = conn.execute(sql, params).lastrowid or 0
            return last

    def read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self._query(sql, params)

    def integrity_ok(self) -> bool:
        rows = self._query("PRAGMA integrity_check")
        return bool(rows) and rows[0][0] == "ok"
