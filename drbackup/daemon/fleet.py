"""When the daemon publishes its fleet summary (jobs/fleet_publish.py, #20 item 1): at start,
on [fleet] publish_schedule, and after any other job finished when an agency's verdict, level
or findings changed since the last publication.

The publication is a host-wide probe job (no repository, no concurrency slot: a few small S3
writes), queued through the same queue as everything else; triggers coalesce into one queued
job. A scheduled trigger always publishes; a job-finished trigger publishes only on a change
(the job computes the summaries and compares, cheaply, from the state database)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from drbackup.config import Config
from drbackup.config.schedule import ParsedSchedule, parse_schedule
from drbackup.daemon.queue import Job, JobQueue
from drbackup.daemon.schedule import next_run
from drbackup.errors import DrBackupError
from drbackup.jobs.fleet_publish import publish_fleet
from drbackup.jobs.runtime import Runtime

log = logging.getLogger("drbackup.daemon")
KIND = "fleet-publish"
HOST_WIDE = "*"  # the job's agency and store: it covers every agency of the host


class FleetPublisher:
    def __init__(self, queue: JobQueue, runtime: Callable[[], Runtime]):
        self.queue = queue
        self.runtime = runtime
        self.schedule: ParsedSchedule | None = None
        self.next_scheduled: float | None = None
        self.force = False  # a queued publication must publish even without a change
        self.enabled = True
        self._fleet_done = 0  # fleet jobs finished (to tell other jobs' finishes apart)
        self._others_seen = 0

    def apply(self, config: Config, now: float, *, first: bool) -> None:
        self.enabled = bool(config.agencies)
        text = config.fleet.publish_schedule
        schedule = None
        if text:
            try:
                schedule = parse_schedule(text)
            except ValueError as exc:
                log.error("fleet summary is not scheduled: %s", exc,
                          extra={"job": KIND, "event": "bad_schedule"})
        if schedule != self.schedule or first:
            self.schedule = schedule
            self.next_scheduled = None if schedule is None else next_run(
                schedule, now, key=KIND, max_jitter=config.daemon.schedule_jitter.total_seconds())
        if first:
            self._others_seen = self.queue.finished_total
            self.submit(force=True, trigger="start")
        else:  # a reload may add or remove agencies: published when that changes the set
            self.submit(force=False, trigger="reload")

    def tick(self, now: float, config: Config) -> None:
        if not self.enabled:
            return
        if self.next_scheduled is not None and self.schedule is not None \
                and now >= self.next_scheduled:
            self.submit(force=True, trigger="schedule")
            self.next_scheduled = next_run(
                self.schedule, now, key=KIND,
                max_jitter=config.daemon.schedule_jitter.total_seconds())
        # Our own job's end bumps finished_total too; only a rise beyond it is another job's
        # (the counters are updated by different threads, hence the strict "more than").
        others = self.queue.finished_total - self._fleet_done
        if others > self._others_seen:
            self._others_seen = others
            self.submit(force=False, trigger="job-finished")

    def submit(self, *, force: bool, trigger: str) -> None:
        if not self.enabled:
            return
        self.force = self.force or force

        def run(job: Job) -> None:
            try:
                forced, self.force = self.force, False
                publish_fleet(self.runtime(), only_if_changed=not forced)
            except DrBackupError as exc:
                log.error("fleet summary not published: %s", exc.one_line(),
                          extra={"job": KIND, "event": "fleet_publish_failed"})
            finally:
                self._fleet_done += 1

        self.queue.submit(Job(KIND, HOST_WIDE, HOST_WIDE, None, run, trigger=trigger,
                              timeout=600.0, probe=True))
