"""File watching: watchdog's inotify observer, plus what watchdog does not tell us.

Events are a trigger and a debounce hint only; the RPO rests on scheduled and reconciliation
runs (restic rescans the whole tree against its parent snapshot anyway). Two failure modes are
surfaced here instead of being lost:

- queue overflow (IN_Q_OVERFLOW): watchdog 7 rebuilds its watches and logs a warning but gives
  the application no event. We subclass its watch group to hear `on_queue_overflow` and report
  it to the sink, which counts it, logs it and triggers a full run of every affected source.
- watch-limit exhaustion (ENOSPC for max_user_watches, EMFILE for max_user_instances) when a
  watch is added: reported to the sink, which counts it, logs it and falls back to scheduled
  runs (plus one full run now); the watcher retries later.

Both paths can be driven at this boundary by `WatchFaults`, passed to the Daemon's constructor
(tests start a daemon process so through tests/support/faulty_daemon.py), because a real
overflow needs root to shrink fs.inotify.max_queued_events.
New subdirectories are watched: watchdog adds a watch for each created directory and emits
events for files already inside it.
"""

from __future__ import annotations

import errno
import fnmatch
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.inotify import InotifyEmitter, InotifyObserver, InotifyWatchGroup
from watchdog.observers.polling import PollingObserver

from drbackup.config.links import link_problem

log = logging.getLogger(__name__)

SourceKey = tuple[str, str]  # (agency, source)
_IGNORED_EVENT_TYPES = frozenset({"opened", "closed_no_write"})
# Only writes matter. Without a filter watchdog asks inotify for IN_OPEN/IN_ACCESS/
# IN_CLOSE_NOWRITE too, and every backup (restic reads every file) floods the queue with
# events that Python then has to discard: 100,000 files kept the daemon busy for a minute.
EVENT_FILTER = [FileCreatedEvent, FileModifiedEvent, FileDeletedEvent, FileMovedEvent,
                FileClosedEvent, DirCreatedEvent, DirDeletedEvent, DirMovedEvent]
_SIMULATED_OVERFLOW_GAP = 1.0
LIMIT_REPORT_GAP = 60.0


class ChangeSink(Protocol):
    def changed(self, key: SourceKey, path: str) -> None: ...

    def overflowed(self, key: SourceKey) -> None: ...

    def watch_failed(self, key: SourceKey, error: OSError) -> None: ...


@dataclass
class WatchFaults:
    """Faults to simulate at the watcher's boundary.

    overflow: sources whose events are dropped and reported as a queue overflow instead.
    watch_errors: sources whose watch cannot be added, with the errno (ENOSPC or EMFILE).
    """

    overflow: set[SourceKey] = field(default_factory=set)
    watch_errors: dict[SourceKey, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> WatchFaults:
        """Parse "overflow:agency/source,enospc:agency/source,emfile:agency/source" (tests
        pass faults to the Daemon's constructor; tests/support/faulty_daemon.py)."""
        faults = cls()
        for item in filter(None, (part.strip() for part in text.split(","))):
            kind, _, target = item.partition(":")
            agency, _, source = target.partition("/")
            key = (agency, source)
            if kind == "overflow":
                faults.overflow.add(key)
            elif kind == "enospc":
                faults.watch_errors[key] = errno.ENOSPC
            elif kind == "emfile":
                faults.watch_errors[key] = errno.EMFILE
        return faults

    def __bool__(self) -> bool:
        return bool(self.overflow or self.watch_errors)


def _excluded(path: str, patterns: Sequence[str]) -> bool:
    """An approximation of restic's exclude matching: a pattern without '/' matches any path
    component, one with '/' the whole path. A wrong guess only costs or saves one trigger."""
    if not patterns:
        return False
    parts = Path(path).parts
    for pattern in patterns:
        if "/" in pattern:
            if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, pattern.rstrip("/") + "/*"):
                return True
        elif any(fnmatch.fnmatch(part, pattern) for part in parts):
            return True
    return False


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher, key: SourceKey, excludes: Sequence[str]):
        self._watcher = watcher
        self._key = key
        self._excludes = list(excludes)
        self._last_simulated = 0.0

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _IGNORED_EVENT_TYPES:
            return
        if event.is_directory and event.event_type == "modified":
            return  # a directory's mtime changes with every entry; the entry has its own event
        if self._key in self._watcher.faults.overflow:
            now = time.monotonic()
            if now - self._last_simulated >= _SIMULATED_OVERFLOW_GAP:
                self._last_simulated = now
                self._watcher.overflow_at(None, keys=[self._key])
            return
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            if raw:
                path = os.fsdecode(raw)
                if not _excluded(path, self._excludes):
                    self._watcher.sink.changed(self._key, path)


def _observer_class(watcher: Watcher) -> type[InotifyObserver]:
    """An inotify observer whose watch groups report queue overflows to `watcher`."""

    class Group(InotifyWatchGroup):
        def on_queue_overflow(self) -> None:
            super().on_queue_overflow()
            watcher.overflow_at(os.fsdecode(self.path))

        def _add_callback(self, path: bytes) -> None:
            # watchdog swallows every OSError for subdirectories, so a watch limit reached
            # while a tree grows would silently leave new directories unwatched. Same steps
            # as watchdog's method, but the error is reported.
            try:
                wd = self._inotify_fd.add_callback(path, self.event_mask, self._callback,
                                                   self._id)
                self._active_callbacks_by_path[path] = wd
                self._active_callbacks_by_watch[wd] = path
            except OSError as exc:
                if path == self.path:
                    raise
                if is_watch_limit(exc):
                    watcher.limit_at(os.fsdecode(self.path), exc)

    class Emitter(InotifyEmitter):
        def on_thread_start(self) -> None:
            self._inotify = Group(
                self._inotify_fd, os.fsencode(self.watch.path),
                is_recursive=self.watch.is_recursive,
                event_mask=self.get_event_mask_from_filter(),
                follow_symlink=self.watch.follow_symlink)

    class Observer(InotifyObserver):
        def __init__(self) -> None:
            super().__init__()
            self._emitter_class = Emitter

    return Observer


@dataclass
class _Watched:
    paths: list[str]
    excludes: list[str]
    watches: list[Any] = field(default_factory=list)
    handler: _Handler | None = None


class Watcher:
    """Watches the paths of directory sources; reports to a ChangeSink (thread-safe calls from
    watchdog's threads)."""

    def __init__(self, sink: ChangeSink, *, faults: WatchFaults | None = None,
                 observer_factory: Callable[[], Any] | None = None):
        self.sink = sink
        self.faults = faults or WatchFaults()
        self._lock = threading.Lock()
        self._sources: dict[SourceKey, _Watched] = {}
        self._limit_reported: dict[SourceKey, float] = {}
        self._pollers: dict[SourceKey, Any] = {}
        self._observer = (observer_factory or _observer_class(self))()
        self._observer.daemon = True
        self._observer.start()

    def watched(self) -> list[SourceKey]:
        with self._lock:
            return [key for key, item in self._sources.items() if item.watches]

    def watch(self, key: SourceKey, paths: Sequence[Path], excludes: Sequence[str] = ()
              ) -> bool:
        """Start watching a source (recursively). False when the watch could not be added; the
        sink has then been told why."""
        self.unwatch(key)
        item = _Watched([str(p) for p in paths], list(excludes))
        item.handler = _Handler(self, key, excludes)
        with self._lock:  # registered first: a subdirectory's watch error names this source
            self._sources[key] = item
        try:
            code = self.faults.watch_errors.get(key)
            if code is not None:
                raise OSError(code, f"{os.strerror(code)} (simulated at the watcher boundary)")
            for path in item.paths:
                problem = link_problem(Path(path))
                if problem is not None:
                    # Never watch through a link: it may point into another agency's tree.
                    log.warning("not watching %s: %s", path, problem,
                                extra={"agency": key[0], "source": key[1]})
                    continue
                if not os.path.isdir(path):
                    log.warning("not watching %s: not a directory", path,
                                extra={"agency": key[0], "source": key[1]})
                    continue
                item.watches.append(self._observer.schedule(
                    item.handler, path, recursive=True, event_filter=EVENT_FILTER))
        except OSError as exc:
            with self._lock:
                self._sources.pop(key, None)
            for watch in item.watches:
                self._unschedule(watch)
            self.sink.watch_failed(key, exc)
            return False
        return True

    def unwatch(self, key: SourceKey) -> None:
        """Stop the inotify watch of a source (its poller, if any, is left alone)."""
        with self._lock:
            item = self._sources.pop(key, None)
        if item is not None:
            for watch in item.watches:
                self._unschedule(watch)

    def _unschedule(self, watch: Any) -> None:
        try:
            self._observer.unschedule(watch)
        except (KeyError, OSError) as exc:
            log.debug("unschedule: %s", exc)

    def overflow_at(self, path: str | None, *, keys: Sequence[SourceKey] = ()) -> None:
        """The inotify queue overflowed: events for `path` (None: `keys`) may be lost."""
        affected = list(keys)
        if path is not None:
            with self._lock:
                affected += [key for key, item in self._sources.items()
                             if any(path == p or path.startswith(p.rstrip("/") + "/")
                                    for p in item.paths)]
        for key in dict.fromkeys(affected):
            self.sink.overflowed(key)

    def limit_at(self, root: str, error: OSError) -> None:
        """A subdirectory below the watched `root` could not be watched (ENOSPC/EMFILE).
        Reported at most once a minute per source."""
        now = time.monotonic()
        with self._lock:
            keys = [key for key, item in self._sources.items() if root in item.paths]
            due = [key for key in keys
                   if now - self._limit_reported.get(key, -LIMIT_REPORT_GAP) >= LIMIT_REPORT_GAP]
            for key in due:
                self._limit_reported[key] = now
        for key in due:
            self.sink.watch_failed(key, error)

    # -- polling: the fallback for sources inotify cannot watch ------------------------------

    def poll(self, key: SourceKey, paths: Sequence[Path], excludes: Sequence[str],
             interval: float) -> bool:
        """Scan the source's tree every `interval` seconds and report changes like the
        inotify watcher does. The first scan runs in the caller's thread."""
        self.unpoll(key)
        observer = PollingObserver(timeout=interval)
        observer.daemon = True
        handler = _Handler(self, key, excludes)
        try:
            for path in paths:
                if link_problem(Path(path)) is None and os.path.isdir(path):
                    observer.schedule(handler, str(path), recursive=True)
            observer.start()
        except OSError as exc:
            log.error("cannot scan %s for changes either: %s", ", ".join(map(str, paths)), exc,
                      extra={"agency": key[0], "source": key[1]})
            return False
        with self._lock:
            self._pollers[key] = observer
        return True

    def unpoll(self, key: SourceKey) -> None:
        with self._lock:
            observer = self._pollers.pop(key, None)
        if observer is not None:
            self._stop_observer(observer)

    def polled(self) -> list[SourceKey]:
        with self._lock:
            return list(self._pollers)

    @staticmethod
    def _stop_observer(observer: Any) -> None:
        try:
            observer.stop()
            observer.join(timeout=5)
        except RuntimeError as exc:
            log.debug("watcher stop: %s", exc)

    def stop(self) -> None:
        with self._lock:
            pollers = list(self._pollers.values())
            self._pollers.clear()
        for observer in [self._observer, *pollers]:
            self._stop_observer(observer)


def is_watch_limit(error: OSError) -> bool:
    return error.errno in (errno.ENOSPC, errno.EMFILE)
