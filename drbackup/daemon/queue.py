"""The job queue: what runs when.

Rules, in this order:
- one job per repository (agency, store) at a time: backup, forget, prune, check and copy of one
  repository never overlap;
- at most `max_concurrent` jobs at once across everything;
- probes (a store reachability check: one S3 request, no restic) take no repository and no
  concurrency slot, so a store outage is noticed even while a backup on that store waits in
  restic's retries;
- fair across agencies: agencies take turns (round-robin), so one agency's storm of changes
  cannot starve the others;
- coalescing: a job whose key (kind, agency, store, source) is already queued is merged into the
  queued one; if it is running, one follow-up is queued and later triggers merge into that;
- every job has a timeout; a job past it (plus a grace) counts as stuck, which stops the systemd
  watchdog pings so systemd restarts the service.

Jobs are generic: (kind, agency, store, source or None, callable). Each runs on its own thread,
started by `dispatch()`, which the supervisor's main loop calls.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from drbackup.errors import DrBackupError

log = logging.getLogger(__name__)

STUCK_GRACE_SECONDS = 120.0
_ids = itertools.count(1)

JobKey = tuple[str, str, str, str | None]
RepoKey = tuple[str, str]


@dataclass
class Job:
    kind: str
    agency: str
    store: str
    source: str | None
    run: Callable[[Job], None]
    trigger: str = "schedule"
    timeout: float = 6 * 3600.0
    id: int = field(default_factory=lambda: next(_ids))
    queued_at: float = field(default_factory=time.time)
    started_at: float | None = None
    coalesced: int = 0  # triggers merged into this job
    # Further repositories the job uses (e.g. a copy reads the primary while writing a replica):
    # none of them may be busy either.
    also_locks: tuple[RepoKey, ...] = ()
    probe: bool = False  # starts no restic: holds no repository and no concurrency slot

    @property
    def key(self) -> JobKey:
        return (self.kind, self.agency, self.store, self.source)

    @property
    def repo(self) -> RepoKey:
        return (self.agency, self.store)

    @property
    def repos(self) -> frozenset[RepoKey]:
        if self.probe:
            return frozenset()
        return frozenset({self.repo, *self.also_locks})

    @property
    def label(self) -> str:
        where = f"{self.agency}/{self.source}" if self.source else f"{self.agency}@{self.store}"
        return f"{self.kind} {where}"

    def log_fields(self) -> dict[str, str]:
        fields = {"agency": self.agency, "job": self.kind, "store": self.store,
                  "trigger": self.trigger}
        if self.source:
            fields["source"] = self.source
        return fields


@dataclass(frozen=True)
class JobView:
    """A copy of a job's public state, for status and metrics."""

    id: int
    kind: str
    agency: str
    store: str
    source: str | None
    trigger: str
    queued_at: float
    started_at: float | None

    @classmethod
    def of(cls, job: Job) -> JobView:
        return cls(job.id, job.kind, job.agency, job.store, job.source, job.trigger,
                   job.queued_at, job.started_at)


class JobQueue:
    def __init__(self, max_concurrent: int, *, on_change: Callable[[], None] | None = None):
        self.max_concurrent = max_concurrent
        self._on_change = on_change
        self._lock = threading.Lock()
        self._queues: OrderedDict[str, deque[Job]] = OrderedDict()  # agency -> its jobs, FIFO
        self._running: dict[int, Job] = {}
        self._threads: dict[int, threading.Thread] = {}
        self._busy: set[RepoKey] = set()
        self._accepting = True
        self._idle = threading.Condition(self._lock)
        self.started_total = 0
        self.finished_total = 0
        self.peak_running = 0  # most jobs at once under the limit (probes run beside it)

    # -- submitting -------------------------------------------------------------------------

    def submit(self, job: Job) -> str:
        """Queue a job. Returns "queued", "coalesced" (merged into a queued one) or "refused"
        (shutting down)."""
        with self._lock:
            if not self._accepting:
                return "refused"
            queue = self._queues.setdefault(job.agency, deque())
            for queued in queue:
                if queued.key == job.key:
                    queued.coalesced += 1
                    return "coalesced"
            queue.append(job)
        self._changed()
        return "queued"

    def is_pending(self, key: JobKey) -> bool:
        """Queued or running."""
        with self._lock:
            return any(j.key == key for j in self._running.values()) or any(
                j.key == key for q in self._queues.values() for j in q)

    def stop_accepting(self) -> int:
        """Refuse new jobs and drop the queued ones; returns how many were dropped."""
        with self._lock:
            self._accepting = False
            dropped = sum(len(q) for q in self._queues.values())
            self._queues.clear()
        return dropped

    # -- running ----------------------------------------------------------------------------

    def dispatch(self) -> list[Job]:
        """Start as many queued jobs as the rules allow; returns the started ones."""
        started: list[Job] = []
        with self._lock:
            while self._accepting:
                job = self._next_job(heavy=self._heavy_running() < self.max_concurrent)
                if job is None:
                    break
                job.started_at = time.time()
                self._running[job.id] = job
                self._busy.update(job.repos)
                thread = threading.Thread(target=self._run, args=(job,),
                                          name=f"job-{job.id}-{job.kind}", daemon=True)
                self._threads[job.id] = thread
                self.started_total += 1
                self.peak_running = max(self.peak_running, self._heavy_running())
                started.append(job)
            for job in started:
                self._threads[job.id].start()
        return started

    def _heavy_running(self) -> int:
        return sum(1 for j in self._running.values() if not j.probe)

    def _next_job(self, *, heavy: bool) -> Job | None:
        """Round-robin over agencies: the first agency (in turn order) with a job whose
        repository is free gives its oldest such job, then goes to the back of the line.
        Without a free concurrency slot (`heavy` False) only probes can start."""
        for agency in list(self._queues):
            queue = self._queues[agency]
            for job in queue:
                if (heavy or job.probe) and not job.repos & self._busy:
                    queue.remove(job)
                    if queue:
                        self._queues.move_to_end(agency)
                    else:
                        del self._queues[agency]
                    return job
        return None

    def _run(self, job: Job) -> None:
        fields = job.log_fields()
        try:
            job.run(job)
        except DrBackupError as exc:
            log.debug("%s ended with an error: %s", job.label, exc.one_line(), extra=fields)
        except Exception:
            log.exception("%s failed unexpectedly", job.label, extra=fields)
        finally:
            with self._lock:
                self._running.pop(job.id, None)
                self._threads.pop(job.id, None)
                self._busy.difference_update(job.repos)
                self.finished_total += 1
                self._idle.notify_all()
            self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    # -- looking ----------------------------------------------------------------------------

    def running(self) -> list[JobView]:
        with self._lock:
            return [JobView.of(j) for j in self._running.values()]

    def queued(self) -> list[JobView]:
        with self._lock:
            return [JobView.of(j) for q in self._queues.values() for j in q]

    def counts(self) -> tuple[int, int]:
        """(running, queued)"""
        with self._lock:
            return len(self._running), sum(len(q) for q in self._queues.values())

    def stuck(self, now: float | None = None) -> list[JobView]:
        """Running jobs past their timeout plus a grace: their worker no longer makes progress."""
        now = time.time() if now is None else now
        with self._lock:
            return [JobView.of(j) for j in self._running.values()
                    if j.started_at is not None
                    and now - j.started_at > j.timeout + STUCK_GRACE_SECONDS]

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job runs; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True
