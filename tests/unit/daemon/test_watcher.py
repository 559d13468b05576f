"""The watcher on a real directory (real inotify through watchdog), and the overflow and
watch-limit paths driven at its boundary."""

from __future__ import annotations

import errno
import threading
import time
from pathlib import Path
from typing import Any

from drbackup.daemon.watcher import SourceKey, Watcher, WatchFaults
from tests.support.daemon import wait_for

KEY: SourceKey = ("planning", "docs")


class Sink:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.changes: list[str] = []
        self.overflows: list[SourceKey] = []
        self.failures: list[tuple[SourceKey, OSError]] = []

    def changed(self, key: SourceKey, path: str) -> None:
        with self.lock:
            self.changes.append(path)

    def overflowed(self, key: SourceKey) -> None:
        with self.lock:
            self.overflows.append(key)

    def watch_failed(self, key: SourceKey, error: OSError) -> None:
        with self.lock:
            self.failures.append((key, error))


def test_changes_and_new_subdirectories_are_reported(tmp_path: Path) -> None:
    sink = Sink()
    watcher = Watcher(sink)
    try:
        assert watcher.watch(KEY, [tmp_path], excludes=["*.tmp"])
        (tmp_path / "a.txt").write_text("a")
        (tmp_path / "skip.tmp").write_text("excluded")
        wait_for(lambda: any(p.endswith("a.txt") for p in sink.changes), 10, "a.txt")
        (tmp_path / "new").mkdir()
        time.sleep(0.3)
        (tmp_path / "new" / "deep.txt").write_text("in a new subdirectory")
        wait_for(lambda: any(p.endswith("deep.txt") for p in sink.changes), 10, "deep.txt")
        assert not any(p.endswith(".tmp") for p in sink.changes)
        assert watcher.watched() == [KEY]
    finally:
        watcher.stop()


def test_a_real_queue_overflow_callback_reaches_the_sink(tmp_path: Path) -> None:
    """watchdog calls on_queue_overflow of every watch group when the kernel reports
    IN_Q_OVERFLOW; our group subclass must turn that into an overflow of the source."""
    sink = Sink()
    watcher = Watcher(sink)
    try:
        assert watcher.watch(KEY, [tmp_path])
        emitters = list(watcher._observer.emitters)
        assert emitters
        for emitter in emitters:
            emitter._inotify.on_queue_overflow()
        assert sink.overflows == [KEY]
    finally:
        watcher.stop()


def test_simulated_overflow_drops_events_and_reports_an_overflow(tmp_path: Path) -> None:
    sink = Sink()
    watcher = Watcher(sink, faults=WatchFaults(overflow={KEY}))
    try:
        assert watcher.watch(KEY, [tmp_path])
        (tmp_path / "lost.txt").write_text("x")
        wait_for(lambda: sink.overflows, 10, "an overflow")
        assert sink.changes == []
    finally:
        watcher.stop()


def test_watch_limit_errors_are_reported_not_raised(tmp_path: Path) -> None:
    sink = Sink()
    faults = WatchFaults.parse("enospc:planning/docs,emfile:planning/other")
    watcher = Watcher(sink, faults=faults)
    try:
        assert not watcher.watch(KEY, [tmp_path])
        assert not watcher.watch(("planning", "other"), [tmp_path])
        assert [e.errno for _, e in sink.failures] == [errno.ENOSPC, errno.EMFILE]
        assert watcher.watched() == []
    finally:
        watcher.stop()


def test_a_watch_limit_on_a_new_subdirectory_is_reported(tmp_path: Path) -> None:
    """watchdog swallows errors for subdirectories; ours reports ENOSPC/EMFILE."""
    sink = Sink()
    watcher = Watcher(sink)
    try:
        assert watcher.watch(KEY, [tmp_path])
        fd: Any = watcher._observer._inotify_fd
        real_add = fd.add_callback

        def add_callback(path: bytes, *args: Any, **kwargs: Any) -> Any:
            if path.endswith(b"too-many"):
                raise OSError(errno.ENOSPC, "inotify watch limit reached")
            return real_add(path, *args, **kwargs)

        fd.add_callback = add_callback
        (tmp_path / "too-many").mkdir()
        wait_for(lambda: sink.failures, 10, "the watch error")
        assert [(k, e.errno) for k, e in sink.failures] == [(KEY, errno.ENOSPC)]
    finally:
        watcher.stop()


def test_polling_reports_changes_without_inotify(tmp_path: Path) -> None:
    sink = Sink()
    watcher = Watcher(sink)
    try:
        assert watcher.poll(KEY, [tmp_path], ["*.tmp"], interval=0.2)
        assert watcher.polled() == [KEY] and watcher.watched() == []
        (tmp_path / "scanned.txt").write_text("found by scanning")
        (tmp_path / "skip.tmp").write_text("excluded")
        wait_for(lambda: any(p.endswith("scanned.txt") for p in sink.changes), 10, "scan")
        assert not any(p.endswith(".tmp") for p in sink.changes)
        watcher.unpoll(KEY)
        assert watcher.polled() == []
    finally:
        watcher.stop()
