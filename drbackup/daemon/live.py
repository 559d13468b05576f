"""Live daemon figures for metrics and `drbackup status`: thread-safe reads of what the queue,
the watcher and the scheduler know right now. drbackup/metrics' `LiveView` protocol reads an
object of this shape; overflow counts are persisted in the state DB (kv) so they survive
restarts (counters must not go backwards without a process restart being visible)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

from drbackup.state import StateDB

SourceKey = tuple[str, str]
OVERFLOWS_KEY = "daemon.watch_overflows"
WATCH_ERRORS_KEY = "daemon.watch_errors"


def _load_counts(state: StateDB, key: str) -> dict[SourceKey, int]:
    raw = state.get_value(key)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    out: dict[SourceKey, int] = {}
    if isinstance(data, dict):
        for name, count in data.items():
            agency, _, source = str(name).partition("/")
            if isinstance(count, int):
                out[(agency, source)] = count
    return out


def _dump_counts(counts: dict[SourceKey, int]) -> str:
    return json.dumps({f"{a}/{s}": n for (a, s), n in sorted(counts.items())})


class LiveStatus:
    """The daemon's live view. `counts` is a callable giving (running, queued) from the queue."""

    def __init__(self, state: StateDB, counts: Callable[[], tuple[int, int]]):
        self._state = state
        self._counts = counts
        self._lock = threading.Lock()
        self._pending: dict[SourceKey, int] = {}
        self._next: dict[SourceKey, float] = {}
        self._overflows = _load_counts(state, OVERFLOWS_KEY)
        self._watch_errors = _load_counts(state, WATCH_ERRORS_KEY)
        self._watched: set[SourceKey] = set()

    # -- read (the LiveView protocol) -------------------------------------------------------

    def jobs_running(self) -> int:
        return self._counts()[0]

    def jobs_queued(self) -> int:
        return self._counts()[1]

    def pending_changes(self) -> dict[SourceKey, int]:
        with self._lock:
            return dict(self._pending)

    def watch_overflows(self) -> dict[SourceKey, int]:
        with self._lock:
            return dict(self._overflows)

    def watch_errors(self) -> dict[SourceKey, int]:
        with self._lock:
            return dict(self._watch_errors)

    def next_runs(self) -> dict[SourceKey, float]:
        with self._lock:
            return dict(self._next)

    def watched(self) -> set[SourceKey]:
        with self._lock:
            return set(self._watched)

    # -- write (the supervisor) -------------------------------------------------------------

    def set_pending(self, key: SourceKey, count: int) -> None:
        with self._lock:
            if count:
                self._pending[key] = count
            else:
                self._pending.pop(key, None)

    def set_next_run(self, key: SourceKey, when: float | None) -> None:
        with self._lock:
            if when is None:
                self._next.pop(key, None)
            else:
                self._next[key] = when

    def set_watched(self, key: SourceKey, watched: bool) -> None:
        with self._lock:
            if watched:
                self._watched.add(key)
            else:
                self._watched.discard(key)

    def forget_source(self, key: SourceKey) -> None:
        with self._lock:
            self._pending.pop(key, None)
            self._next.pop(key, None)
            self._watched.discard(key)

    def count_overflow(self, key: SourceKey) -> int:
        with self._lock:
            self._overflows[key] = self._overflows.get(key, 0) + 1
            value, text = self._overflows[key], _dump_counts(self._overflows)
        self._state.set_value(OVERFLOWS_KEY, text)
        return value

    def count_watch_error(self, key: SourceKey) -> int:
        with self._lock:
            self._watch_errors[key] = self._watch_errors.get(key, 0) + 1
            value, text = self._watch_errors[key], _dump_counts(self._watch_errors)
        self._state.set_value(WATCH_ERRORS_KEY, text)
        return value
