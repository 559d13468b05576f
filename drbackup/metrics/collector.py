"""The custom collector: every value comes from the state database (and, in the daemon, from the
live-status object), so values survive restarts and a scrape never starts restic or reaches S3.

Runs are folded into in-memory aggregates incrementally: each scrape reads only the runs added
(or finished) since the previous one, by a primary-key range scan. After a restart the first
scrape folds the whole history once.
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from drbackup import __version__
from drbackup.config.models import Config
from drbackup.errors import DrBackupError
from drbackup.metrics.aggregates import (
    Aggregates,
    BackupFold,
    VerifyFold,
    as_number,
)
from drbackup.metrics.definitions import (
    BACKUP_RESULTS,
    FILE_STATES,
)
from drbackup.metrics.guard import GuardView, add_guard, read_guard
from drbackup.metrics.live import LiveView
from drbackup.metrics.offline import add_offline
from drbackup.metrics.samples import Samples
from drbackup.state import RunRecord, StateDB
from drbackup.state.health import StoreHealthRecord, replication_status, store_health

log = logging.getLogger(__name__)

FETCH_BATCH = 50_000


@dataclass
class _Sections:
    head: Samples  # build info, objectives, state_up
    state: Samples | None  # state-derived families; None when unreadable or unchanged
    tail: Samples  # replication lag (clock-dependent), live view, host
    state_ok: bool


class StateCollector(Collector):
    """Builds every drbackup_* family from config + state (+ live view) at scrape time."""

    def __init__(self, config: Config, state: StateDB, live: LiveView | None = None, *,
                 clock: Callable[[], float] = time.time):
        self.config = config
        self.state = state
        self.live = live
        self.clock = clock
        self._lock = threading.Lock()
        self._agg = Aggregates()
        self._low = 0  # every run with an id <= _low is folded
        self._seen: set[int] = set()  # folded runs above _low
        self._folded = 0
        self._state_key: object = None
        self._cached_key: object = ()
        self._cached_text = ""

    def set_config(self, config: Config) -> None:
        with self._lock:
            self.config = config
            self._cached_key = ()  # the exported agencies and sources changed

    def describe(self) -> Iterable[Metric]:
        return []  # names are not checked at registration; collect() stays lazy

    # -- reading state -----------------------------------------------------------------------

    def _refresh(self) -> list[RunRecord]:
        """Fold runs finished since the last scrape; returns the runs still running."""
        # Runs of killed one-shot commands are not running (a write: never blinds the scrape).
        with suppress(DrBackupError):
            self.state.close_dead_runs()
        running: list[RunRecord] = []
        after = top = self._low
        new_low: int | None = None
        while True:
            batch = self.state.runs_after(after, limit=FETCH_BATCH)
            for run in batch:
                top = max(top, run.id)
                if run.result == "running":
                    running.append(run)
                    if new_low is None:
                        new_low = run.id - 1
                elif run.id not in self._seen:
                    self._agg.fold(run)
                    self._seen.add(run.id)
                    self._folded += 1
            if len(batch) < FETCH_BATCH:
                break
            after = batch[-1].id
        self._low = new_low if new_low is not None else top
        self._seen = {run_id for run_id in self._seen if run_id > self._low}
        return running

    # -- building families -------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        """prometheus_client's view (for registries); render() is the fast path."""
        yield from self.samples().to_metrics()

    def render(self) -> str:
        """The text exposition (format 0.0.4) of every drbackup_* family. The state-derived
        families are re-rendered only when state changed since the previous scrape."""
        with self._lock:
            parts = self._sections(reuse=True)
            if parts.state is not None:
                self._cached_text = parts.state.render()
                self._cached_key = self._state_key
            state_text = self._cached_text if parts.state_ok else ""
            return "".join([parts.head.render(), state_text, parts.tail.render()])

    def samples(self) -> Samples:
        """Every family of one scrape as data (uncached)."""
        with self._lock:
            parts = self._sections(reuse=False)
            merged = Samples()
            for section in (parts.head, parts.state, parts.tail):
                if section is not None:
                    merged.families.update(section.families)
            return merged

    def _sections(self, *, reuse: bool) -> _Sections:
        now = self.clock()
        head, tail = Samples(), Samples()
        gauge = head.add
        gauge("drbackup_build_info", (__version__,), 1)
        for agency in self.config.agencies:
            gauge("drbackup_rpo_target_seconds", (agency.id,), agency.rpo.total_seconds())
            gauge("drbackup_rto_target_seconds", (agency.id,), agency.rto.total_seconds())
            gauge("drbackup_verify_max_age_seconds", (agency.id,),
                  agency.verify_max_age.total_seconds())
        running: list[RunRecord] | None
        try:
            running = self._refresh()
            health = store_health(self.state)
            # Read at every scrape (two indexed statements): releases and false alarms
            # update rows in place, so the run-id watermark cannot tell they happened.
            guard = read_guard(self.state, self.config)
        except DrBackupError as exc:
            log.warning("metrics: cannot read the state database: %s", exc.one_line())
            running, health, guard = None, {}, GuardView()
        gauge("drbackup_state_up", (), 0 if running is None else 1)
        state: Samples | None = None
        if running is not None:
            self._state_key = (self._low, self._folded, tuple(r.id for r in running),
                               tuple(sorted((name, r.up, r.checked_at, r.latency_seconds)
                                            for name, r in health.items())), guard)
            if not reuse or self._state_key != self._cached_key:
                state = Samples()
                self._from_state(state, running, health)
                add_guard(state, guard)
            self._replication_lag(tail, now, replication_status(self.state))
            try:
                add_offline(tail, self.config, self.state, now)
            except DrBackupError as exc:
                log.warning("metrics: cannot read the media catalogue: %s", exc.one_line())
        self._from_live(tail.add, running)
        self._host(tail.add)
        return _Sections(head, state, tail, running is not None)

    def _replication_lag(self, out: Samples, now: float,
                         status: dict[tuple[str, str], dict[str, object]]) -> None:
        """Age of the oldest primary snapshot the replica lacks (0 when it lacks none). Kept
        apart from _from_state: it grows with the clock, so it is never served from the cache.

        A copy that started at T took every snapshot made before T, so the uncopied ones are
        the successful backups that started after the last successful replication began. A
        newer measurement by the replication job (kv `replication:<agency>:<replica>`, which
        compares snapshot lists) takes precedence: its oldest uncopied snapshot, plus any
        backup made after it measured."""
        for agency in self.config.agencies:
            starts = self._agg.success_starts.get(agency.id)
            if not starts:
                continue
            for replica in agency.replicas:
                replicated = self._agg.replication.get((agency.id, replica))
                cutoff = replicated[0] if replicated is not None else float("-inf")
                oldest: float | None = None
                measured = status.get((agency.id, replica))
                measured_at = as_number(measured.get("measured_at")) if measured else None
                if measured is not None and measured_at is not None and measured_at >= cutoff:
                    cutoff = measured_at
                    oldest = as_number(measured.get("oldest_uncopied_time"))
                index = bisect.bisect_right(starts, cutoff)
                if index < len(starts):
                    oldest = starts[index] if oldest is None else min(oldest, starts[index])
                lag = 0.0 if oldest is None else max(0.0, now - oldest)
                out.add("drbackup_replication_lag_seconds", (agency.id, replica), lag)

    def _from_state(self, out: Samples, running: list[RunRecord],
                    health: dict[str, StoreHealthRecord]) -> None:
        agg = self._agg
        gauge = out.add
        last_results: dict[str, list[tuple[tuple[str, str, str], tuple[float, str]]]] = {}
        for item in sorted(agg.last_result.items()):
            last_results.setdefault(item[0][0], []).append(item)
        verifies: dict[str, list[tuple[tuple[str, str], VerifyFold]]] = {}
        for verify_item in sorted(agg.verify.items()):
            verifies.setdefault(verify_item[0][0], []).append(verify_item)
        running_starts: dict[tuple[str, str], float] = {}
        for run in running:
            if run.job == "backup" and run.source:
                key = (run.agency, run.source)
                running_starts[key] = max(running_starts.get(key, 0.0), run.started_at)
        stores: set[str] = set()
        for agency in self.config.agencies:
            stores.update([agency.store, *agency.replicas])
            for source in agency.sources:
                key = (agency.id, source.id)
                labels = key
                b = agg.backups.get(key) or BackupFold()
                last = b.last_success
                if last is not None:
                    finished = last.finished_at or last.started_at
                    gauge("drbackup_backup_last_success_timestamp_seconds", labels, finished)
                    gauge("drbackup_backup_processed_bytes", labels,
                          as_number(last.bytes_processed))
                    for state, value in zip(FILE_STATES, (
                            last.files_new, last.files_changed, last.files_unmodified,
                            last.files_unreadable), strict=True):
                        gauge("drbackup_backup_files", (*labels, state),
                              float(value or 0))
                if b.first_success is not None:
                    gauge("drbackup_backup_first_success_timestamp_seconds", labels,
                          b.first_success)
                attempt = max(b.last_attempt or 0.0, running_starts.get(key, 0.0))
                gauge("drbackup_backup_last_attempt_timestamp_seconds", labels,
                      attempt or None)
                for result in sorted({*BACKUP_RESULTS, *b.results}):
                    gauge("drbackup_backup_runs_total", (*labels, result),
                          float(b.results.get(result, 0)))
                gauge("drbackup_backup_consecutive_failures", labels,
                      float(len(b.failures_since_success)))
                gauge("drbackup_backup_added_bytes_total", labels, float(b.added_bytes))
                out.histogram("drbackup_backup_duration_seconds", labels, b.buckets,
                              b.duration_sum)
                if b.dump is not None:
                    gauge("drbackup_dump_size_bytes", labels, b.dump[1])
                    gauge("drbackup_dump_duration_seconds", labels, b.dump[2])
            sources = {"", *(s.id for s in agency.sources)}
            for (agency_id, source_id, kind), (_, result) in last_results.get(agency.id, []):
                if source_id not in sources:
                    continue
                gauge("drbackup_last_run_result", (agency_id, source_id, kind, result), 1.0)
            for (agency_id, kind), verify in verifies.get(agency.id, []):
                gauge("drbackup_verify_last_success_timestamp_seconds", (agency_id, kind),
                      verify.last_success)
                gauge("drbackup_verify_last_failure_timestamp_seconds", (agency_id, kind),
                      verify.last_failure)
                for result in sorted({*BACKUP_RESULTS, *verify.results}):
                    gauge("drbackup_verify_runs_total", (agency_id, kind, result),
                          float(verify.results.get(result, 0)))
            drills = [d for (a, _), d in agg.drills.items() if a == agency.id]
            if drills:
                gauge("drbackup_restore_drill_duration_seconds", (agency.id,),
                      max(drills)[1])
                gauge("drbackup_rto_estimate_seconds", (agency.id,),
                      sum(d[2] for d in drills))
            for replica in agency.replicas:
                replicated = agg.replication.get((agency.id, replica))
                if replicated is not None:
                    gauge("drbackup_replication_last_success_timestamp_seconds",
                          (agency.id, replica), replicated[1])
            for store in (agency.store, *agency.replicas):
                stats = agg.repo_stats.get((agency.id, store))
                if stats is not None:
                    gauge("drbackup_snapshots", (agency.id, store), stats[1])
                    gauge("drbackup_repository_size_bytes", (agency.id, store), stats[2])
        stores.update(self.config.stores)
        for name in sorted(stores):
            record = health.get(name)
            if record is None:
                continue
            gauge("drbackup_store_up", (name,), 1.0 if record.up else 0.0)
            gauge("drbackup_store_latency_seconds", (name,),
                  record.latency_seconds if record.up else None)
            gauge("drbackup_store_last_check_timestamp_seconds", (name,), record.checked_at)

    def _configured_sources(self) -> set[tuple[str, str]]:
        return {(a.id, s.id) for a in self.config.agencies for s in a.sources}

    def _from_live(self, gauge: Callable[[str, tuple[str, ...], float | None], None],
                   running: list[RunRecord] | None) -> None:
        live = self.live
        if live is None:
            if running is not None:
                gauge("drbackup_jobs_running", (), float(len(running)))
            return
        configured = self._configured_sources()
        try:
            gauge("drbackup_jobs_running", (), float(live.jobs_running()))
            gauge("drbackup_jobs_queued", (), float(live.jobs_queued()))
            per_source: list[tuple[str, dict[tuple[str, str], float]]] = [
                ("drbackup_pending_changes",
                 {k: float(v) for k, v in live.pending_changes().items()}),
                ("drbackup_watch_overflows_total",
                 {k: float(v) for k, v in live.watch_overflows().items()}),
                ("drbackup_next_run_timestamp_seconds", dict(live.next_runs())),
            ]
        except Exception:
            log.exception("metrics: the daemon's live status failed")
            return
        for name, values in per_source:
            for key in sorted(configured):
                if name != "drbackup_next_run_timestamp_seconds" or key in values:
                    gauge(name, key, values.get(key, 0.0))

    def _host(self, gauge: Callable[[str, tuple[str, ...], float | None], None]) -> None:
        daemon = self.config.daemon
        db = self.state.path
        size = 0
        for path in (db, db.with_name(db.name + "-wal")):
            try:
                size += path.stat().st_size
            except OSError:
                continue
        gauge("drbackup_state_db_size_bytes", (), float(size))
        for kind, directory in (("state", daemon.state_dir), ("cache", daemon.cache_dir)):
            existing = _existing(directory)
            if existing is None:
                continue
            try:
                fs = os.statvfs(existing)
            except OSError:
                continue
            gauge("drbackup_filesystem_avail_bytes", (kind,), float(fs.f_bavail * fs.f_frsize))
            gauge("drbackup_filesystem_size_bytes", (kind,), float(fs.f_blocks * fs.f_frsize))


def _existing(path: Path) -> Path | None:
    """The directory, or its nearest existing parent (the cache may not exist yet)."""
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            return candidate
    return None
