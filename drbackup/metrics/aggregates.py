"""Runs folded into in-memory aggregates, incrementally (one run at a time, as the collector
reads them from the state database): per source the last backup, its durations and results,
per repository the last verification."""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

from drbackup.metrics.definitions import DURATION_BUCKETS
from drbackup.state import RunRecord

VERIFY_JOBS = frozenset({"check", "drill", "verify"})
SUCCESS = frozenset({"success", "warning"})


def as_number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass
class BackupFold:
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
            dump_bytes = as_number(run.details.get("dump_bytes"))
            if dump_bytes is not None and (self.dump is None or finished >= self.dump[0]):
                self.dump = (finished, dump_bytes, as_number(run.details.get("dump_seconds")))
        elif run.result == "failed" and run.started_at > self.last_success_started:
            self.failures_since_success.append(run.started_at)


@dataclass
class VerifyFold:
    results: Counter[str] = field(default_factory=Counter)
    last_success: float | None = None
    last_failure: float | None = None


@dataclass
class Aggregates:
    backups: dict[tuple[str, str], BackupFold] = field(default_factory=dict)
    last_result: dict[tuple[str, str, str], tuple[float, str]] = field(default_factory=dict)
    verify: dict[tuple[str, str], VerifyFold] = field(default_factory=dict)
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
            self.backups.setdefault((run.agency, run.source), BackupFold()).fold(run)
        if run.job in VERIFY_JOBS:
            detail = run.details.get("kind")
            # Drills are one kind whatever they restored; checks say which check they ran.
            kind = "drill" if run.job == "drill" else (
                detail if isinstance(detail, str) and detail else run.job)
            verify = self.verify.setdefault((run.agency, kind), VerifyFold())
            verify.results[run.result] += 1
            if run.result in SUCCESS:
                verify.last_success = max(verify.last_success or finished, finished)
            elif run.result == "failed":
                verify.last_failure = max(verify.last_failure or finished, finished)
            if kind == "drill" and run.result in SUCCESS:
                seconds = max(0.0, finished - run.started_at)
                estimate = as_number(run.details.get("rto_estimate_seconds"))
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
        size = as_number(run.details.get("repository_size_bytes"))
        count = as_number(run.details.get("snapshots", run.details.get("snapshots_count")))
        if run.store and run.result in SUCCESS and (size is not None or count is not None):
            stats_key = (run.agency, run.store)
            last_stats = self.repo_stats.get(stats_key)
            if last_stats is None or finished >= last_stats[0]:
                self.repo_stats[stats_key] = (finished, count, size)
