"""The custom collector: every value comes from the state database (and, in the daemon, from the
live-status object), so values survive restarts and a scrape never starts restic or reaches S3.

Runs are folded into in-memory aggregates incrementally: each scrape reads only the runs added
(or finished) since the previous one, by a primary-key range scan. After a restart the first
scrape folds the whole history once.
"""

from __future__ import annotations

import bisect
import functools
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from drbackup import __version__
from drbackup.config.models import Config
from drbackup.errors import DrBackupError
from drbackup.metrics.definitions import (
    BACKUP_RESULTS,
    DURATION_BUCKETS,
    FILE_STATES,
    METRICS,
)
from drbackup.metrics.live import LiveView
from drbackup.state import RunRecord, StateDB
from drbackup.state.health import StoreHealthRecord, replication_status, store_health

log = logging.getLogger(__name__)

VERIFY_JOBS = frozenset({"check", "drill", "verify"})
SUCCESS = frozenset({"success", "warning"})
_BUCKET_LABELS = (*(repr(b) for b in DURATION_BUCKETS), "+Inf")
FETCH_BATCH = 50_000


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass
class _Backup:
    results: Counter[str] = field(default_factory=Counter)
    added_bytes: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))
    duration_sum: float = 0.0
    first_success: float | None = None
    last_success: RunRecord | None = None
    last_success_started: float = float("-inf")
    failures_since_success: list[float] = field(default_factory=list)
    last_attempt: float | None = None
    dump: tuple[float, float | None, float | None] | None = None  # finished, bytes, seconds

    def fold(self, run: RunRecord) -> None:
        self.results[run.result] += 1
        self.last_attempt = max(self.last_attempt or run.started_at, run.started_at)
        finished = run.finished_at or run.started_at
        if run.result in SUCCESS:
            self.added_bytes += run.bytes_added or 0
            seconds = max(0.0, finished - run.started_at)
            self.buckets[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
            self.duration_sum += seconds
            if self.first_success is None or finished < self.first_success:
                self.first_success = finished
            last = self.last_success
            if last is None or finished >= (last.finished_at or last.started_at):
                self.last_success = run
            if run.started_at > self.last_success_started:
                self.last_success_started = run.started_at
                self.failures_since_success = [
                    t for t in self.failures_since_success if t > run.started_at]
            dump_bytes = _number(run.details.get("dump_bytes"))
            if dump_bytes is not None and (self.dump is None or finished >= self.dump[0]):
                self.dump = (finished, dump_bytes, _number(run.details.get("dump_seconds")))
        elif run.result == "failed" and run.started_at > self.last_success_started:
            self.failures_since_success.append(run.started_at)


@dataclass
class _Verify:
    results: Counter[str] = field(default_factory=Counter)
    last_success: float | None = None
    last_failure: float | None = None


@dataclass
class _Aggregates:
    backups: dict[tuple[str, str], _Backup] = field(default_factory=dict)
    last_result: dict[tuple[str, str, str], tuple[float, str]] = field(default_factory=dict)
    verify: dict[tuple[str, str], _Verify] = field(default_factory=dict)
    # (agency, source) -> newest successful drill: finished, duration, RTO estimate
    drills: dict[tuple[str, str], tuple[float, float, float]] = field(default_factory=dict)
    # agency -> start times of its successful backups, sorted (snapshot times)
    success_starts: dict[str, list[float]] = field(default_factory=dict)
    replication: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    repo_stats: dict[tuple[str, str], tuple[float, float | None, float | None]] = field(
        default_factory=dict)

    def fold(self, run: RunRecord) -> None:
        finished = run.finished_at or run.started_at
        key = (run.agency, run.source or "", run.job)
        previous = self.last_result.get(key)
        if previous is None or run.started_at >= previous[0]:
            self.last_result[key] = (run.started_at, run.result)
        if run.job == "backup" and run.source:
            self.backups.setdefault((run.agency, run.source), _Backup()).fold(run)
        if run.job in VERIFY_JOBS:
            detail = run.details.get("kind")
            # Drills are one kind whatever they restored; checks say which check they ran.
            kind = "drill" if run.job == "drill" else (
                detail if isinstance(detail, str) and detail else run.job)
            verify = self.verify.setdefault((run.agency, kind), _Verify())
            verify.results[run.result] += 1
            if run.result in SUCCESS:
                verify.last_success = max(verify.last_success or finished, finished)
            elif run.result == "failed":
                verify.last_failure = max(verify.last_failure or finished, finished)
            if kind == "drill" and run.result in SUCCESS:
                seconds = max(0.0, finished - run.started_at)
                estimate = _number(run.details.get("rto_estimate_seconds"))
                drill_key = (run.agency, run.source or "")
                drill = self.drills.get(drill_key)
                if drill is None or finished >= drill[0]:
                    self.drills[drill_key] = (finished, seconds,
                                              seconds if estimate is None else estimate)
        if run.job == "backup" and run.source and run.result in SUCCESS:
            bisect.insort(self.success_starts.setdefault(run.agency, []), run.started_at)
        if run.job == "replicate" and run.result in SUCCESS:
            replica = run.details.get("replica")
            name = replica if isinstance(replica, str) and replica else run.store
            if name:
                last = self.replication.get((run.agency, name))
                if last is None or run.started_at >= last[0]:
                    self.replication[(run.agency, name)] = (run.started_at, finished)
        size = _number(run.details.get("repository_size_bytes"))
        count = _number(run.details.get("snapshots", run.details.get("snapshots_count")))
        if run.store and run.result in SUCCESS and (size is not None or count is not None):
            stats_key = (run.agency, run.store)
            last_stats = self.repo_stats.get(stats_key)
            if last_stats is None or finished >= last_stats[0]:
                self.repo_stats[stats_key] = (finished, count, size)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


@functools.lru_cache(maxsize=1 << 16)
def _label_text(names: tuple[str, ...], values: tuple[str, ...],
                extra: tuple[str, str] | None) -> str:
    """'{a="x",b="y"}' (cached: the label sets of a fleet barely change between scrapes)."""
    pairs = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra is not None:
        pairs.append(f'{extra[0]}="{extra[1]}"')
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _format(value: float) -> str:
    if value != value:  # NaN
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class Samples:
    """The values of one scrape, by family, rendered straight to the text format (much
    faster than prometheus_client's generic encoder for thousands of series)."""

    def __init__(self) -> None:
        # family -> [(sample suffix, label values, extra (name, value) label or None, value)]
        self.families: dict[str, list[tuple[str, tuple[str, ...], tuple[str, str] | None,
                                            float]]] = {}

    def add(self, name: str, labels: tuple[str, ...], value: float | None) -> None:
        if value is not None:
            self.families.setdefault(name, []).append(("", labels, None, float(value)))

    def histogram(self, name: str, labels: tuple[str, ...], buckets: list[int],
                  total: float) -> None:
        rows = self.families.setdefault(name, [])
        cumulative = 0
        for bound, count in zip(_BUCKET_LABELS, buckets, strict=True):
            cumulative += count
            rows.append(("_bucket", labels, ("le", bound), float(cumulative)))
        rows.append(("_sum", labels, None, total))
        rows.append(("_count", labels, None, float(cumulative)))

    def value(self, name: str, *labels: str) -> float | None:
        """One plain sample's value (tests, benchmarks)."""
        for suffix, values, extra, value in self.families.get(name, []):
            if not suffix and extra is None and values == labels:
                return value
        return None

    def render(self) -> str:
        lines: list[str] = []
        for name, rows in self.families.items():
            spec = METRICS[name]
            help_text = spec.help.replace("\\", "\\\\").replace("\n", "\\n")
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {spec.type}")
            names = spec.labels
            for suffix, values, extra, value in rows:
                lines.append(f"{name}{suffix}{_label_text(names, values, extra)} "
                             f"{_format(value)}")
        return "\n".join(lines) + "\n" if lines else ""

    def to_metrics(self) -> list[Metric]:
        metrics = []
        for name, rows in self.families.items():
            spec = METRICS[name]
            metric = Metric(name.removesuffix("_total") if spec.type == "counter" else name,
                            spec.help, spec.type)
            for suffix, values, extra, value in rows:
                labels = dict(zip(spec.labels, values, strict=True))
                if extra is not None:
                    labels[extra[0]] = extra[1]
                metric.add_sample(name + suffix, labels, value)
            metrics.append(metric)
        return metrics


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
        self._agg = _Aggregates()
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
        except DrBackupError as exc:
            log.warning("metrics: cannot read the state database: %s", exc.one_line())
            running, health = None, {}
        gauge("drbackup_state_up", (), 0 if running is None else 1)
        state: Samples | None = None
        if running is not None:
            self._state_key = (self._low, self._folded, tuple(r.id for r in running),
                               tuple(sorted((name, r.up, r.checked_at, r.latency_seconds)
                                            for name, r in health.items())))
            if not reuse or self._state_key != self._cached_key:
                state = Samples()
                self._from_state(state, running, health)
            self._replication_lag(tail, now, replication_status(self.state))
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
                measured_at = _number(measured.get("measured_at")) if measured else None
                if measured is not None and measured_at is not None and measured_at >= cutoff:
                    cutoff = measured_at
                    oldest = _number(measured.get("oldest_uncopied_time"))
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
        verifies: dict[str, list[tuple[tuple[str, str], _Verify]]] = {}
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
                b = agg.backups.get(key) or _Backup()
                last = b.last_success
                if last is not None:
                    finished = last.finished_at or last.started_at
                    gauge("drbackup_backup_last_success_timestamp_seconds", labels, finished)
                    gauge("drbackup_backup_processed_bytes", labels,
                          _number(last.bytes_processed))
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
