"""What the daemon tells the outside about itself: systemd's STATUS= line and watchdog pings
(only while it makes progress), and the status file `drbackup status` reads (rewritten when
something changed, else every STATUS_REFRESH_SECONDS)."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from drbackup.daemon.instance import write_status
from drbackup.daemon.live import LiveStatus
from drbackup.daemon.notify import Notifier
from drbackup.daemon.queue import JobQueue
from drbackup.daemon.watcher import SourceKey
from drbackup.engine import RUNNING

log = logging.getLogger("drbackup.daemon")

STATUS_EVERY_SECONDS = 1.0
STATUS_REFRESH_SECONDS = 30.0
LOOP_STALL_SECONDS = 30.0


class SourceTimes(Protocol):
    """What the status file shows of one source besides the live figures (a SourceSlot)."""

    @property
    def next_scheduled(self) -> float | None: ...

    @property
    def next_reconcile(self) -> float: ...

    @property
    def polling(self) -> bool: ...


class StatusReporter:
    """The main loop calls `beat()` after every pass and `report()` at its end."""

    def __init__(self, config_path: Path, state_dir: Path, queue: JobQueue,
                 notifier: Notifier):
        self.config_path = config_path
        self.state_dir = state_dir
        self.queue = queue
        self.notifier = notifier
        self.started_at = time.time()
        self.loop_beat = time.monotonic()
        self._last_write = 0.0
        self._last_status = ""
        self._last_status_at = 0.0
        self._failing = False

    def beat(self) -> None:
        self.loop_beat = time.monotonic()

    def progress_ok(self) -> bool:
        """The loop ran recently and no worker is past its timeout."""
        return (time.monotonic() - self.loop_beat < LOOP_STALL_SECONDS
                and not self.queue.stuck())

    def summary(self, agencies: int, sources: int) -> str:
        running, queued = self.queue.counts()
        now_running = ", ".join(f"{j.kind} {j.agency}/{j.source or j.store}"
                                for j in self.queue.running())
        text = (f"{agencies} agencies, {sources} sources; "
                f"{running} running, {queued} queued")
        return f"{text}: {now_running}" if now_running else text

    def report(self, now: float, live: LiveStatus, slots: Mapping[SourceKey, SourceTimes],
               agencies: int, *, force: bool = False, stopping: bool = False) -> None:
        if self.notifier.watchdog_due() and self.progress_ok():
            self.notifier.watchdog()
        if not force and now - self._last_write < STATUS_EVERY_SECONDS:
            return
        self._last_write = now
        self.notifier.status(self.summary(agencies, len(slots)))
        pending = live.pending_changes()
        next_runs = live.next_runs()
        overflows = live.watch_overflows()
        watched = live.watched()
        sources = {}
        for key, slot in slots.items():
            sources[f"{key[0]}/{key[1]}"] = {
                "agency": key[0], "source": key[1], "pending_changes": pending.get(key, 0),
                "next_run": next_runs.get(key), "next_scheduled": slot.next_scheduled,
                "next_reconcile": slot.next_reconcile, "watched": key in watched,
                "polled": slot.polling,
                "watch_overflows": overflows.get(key, 0),
            }
        status: dict[str, Any] = {
            "pid": os.getpid(), "started_at": self.started_at,
            "stopping": stopping, "config": str(self.config_path),
            "running": [vars(j) for j in self.queue.running()],
            "queued": [vars(j) for j in self.queue.queued()],
            "restic_processes": RUNNING.count(),
            "peak_running_jobs": self.queue.peak_running,
            "max_concurrent_jobs": self.queue.max_concurrent,
            "sources": sources,
        }
        # Rewritten when something changed, else every STATUS_REFRESH_SECONDS (updated_at).
        fingerprint = json.dumps(status, sort_keys=True, default=str)
        if (not force and fingerprint == self._last_status
                and now - self._last_status_at < STATUS_REFRESH_SECONDS):
            return
        self._last_status, self._last_status_at = fingerprint, now
        status["updated_at"] = now
        try:
            write_status(self.state_dir, status)
        except OSError as exc:
            if not self._failing:  # once per streak, not every second on a full disk
                log.warning("cannot write the status file: %s", exc,
                            extra={"event": "status_write_failed"})
            self._failing = True
            return
        if self._failing:
            self._failing = False
            log.info("status file written again", extra={"event": "status_written"})
