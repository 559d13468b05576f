"""The daemon's main loop: turns file changes, schedules and reconciliation into queued jobs,
keeps systemd informed, reloads on SIGHUP and stops cleanly on SIGTERM.

Start-up order: single-instance lock → state DB → close runs a crash left open and run plain
`restic unlock` (stale locks only) on their repositories → check the stores → watch sources →
READY=1 → one backup of every source (changes made while we were down are unknown) → loop.

Per-source triggers and the backup job's back-off are sources.py's (SourceScheduler); what the
daemon reports (watchdog, STATUS=, the status file) is status.py's; here: life cycle, reload,
the periodic tasks of tasks.py.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from drbackup.config import Config, load_config
from drbackup.config.schedule import ParsedSchedule, parse_schedule
from drbackup.config.unit import read_only_problem
from drbackup.daemon.fleet import FleetPublisher
from drbackup.daemon.instance import InstanceLock
from drbackup.daemon.live import LiveStatus
from drbackup.daemon.notify import Notifier
from drbackup.daemon.queue import Job, JobQueue
from drbackup.daemon.schedule import next_run
from drbackup.daemon.sources import JOB_TIMEOUT_MARGIN, SourceScheduler, find_agency
from drbackup.daemon.status import StatusReporter
from drbackup.daemon.tasks import PERIODIC_TASKS, FollowUp, PeriodicTask
from drbackup.daemon.watcher import Watcher, WatchFaults
from drbackup.engine import RUNNING
from drbackup.engine.runner import KILL_AFTER_TERM_SECONDS
from drbackup.errors import DrBackupError
from drbackup.jobs.daemon_backup import KnownRepositories
from drbackup.jobs.runtime import Runtime, restic_for
from drbackup.state import StateDB

if TYPE_CHECKING:
    from drbackup.metrics import MetricsServer

log = logging.getLogger("drbackup.daemon")

TICK_SECONDS = 0.25


@dataclass
class TaskSlot:
    task: PeriodicTask
    agency: str
    store: str
    schedule: ParsedSchedule
    next_scheduled: float


class Daemon:
    def __init__(self, config_path: Path, config: Config, *, notifier: Notifier | None = None,
                 faults: WatchFaults | None = None):
        self.config_path = config_path
        self.config = config
        self.notifier = notifier or Notifier()
        self.faults = faults if faults is not None else WatchFaults()
        self.state_dir = config.daemon.state_dir
        self._lock = InstanceLock(self.state_dir)
        self._wake = threading.Event()
        self._stop_requested = False
        self._stopping = False
        self._reload_requested = False
        self._tasks: dict[tuple[str, str, str], TaskSlot] = {}
        self.repositories = KnownRepositories()
        self.state: StateDB | None = None
        self.runtime: Runtime | None = None
        self.queue = JobQueue(config.daemon.max_concurrent_jobs, on_change=self._wake.set)
        self.status = StatusReporter(config_path, self.state_dir, self.queue, self.notifier)
        self.sources = SourceScheduler(
            config, self.queue, wake=self._wake.set, runtime=self._runtime,
            repositories=self.repositories, submit_task=self._submit_task,
            stop_requested=lambda: self._stop_requested)
        self.fleet = FleetPublisher(self.queue, self._runtime)  # the signed summary (#20)
        self.live: LiveStatus | None = None
        self.metrics: MetricsServer | None = None
        self.watcher: Watcher | None = None

    # -- signals ----------------------------------------------------------------------------

    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stop_requested and self._stopping:
            # A second SIGTERM/Ctrl-C while waiting for jobs: stop restic now.
            RUNNING.terminate_all()
        self._stop_requested = True
        self._wake.set()

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self._reload_requested = True
        self._wake.set()

    def _install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_hup)

    # -- life cycle -------------------------------------------------------------------------

    def run(self) -> int:
        self._lock.acquire()
        clean = False
        try:
            self._install_signals()
            self._start()
            self._loop()
            self._shutdown()
            clean = True
        finally:
            if not clean:
                # An unexpected error: restic children run in their own sessions and would
                # outlive us; stop them so their locks are released.
                RUNNING.terminate_all()
                self.queue.stop_accepting()
                self.queue.wait_idle(KILL_AFTER_TERM_SECONDS)
            if self.watcher is not None:
                self.watcher.stop()
            if self.metrics is not None:
                self.metrics.stop()
                self.metrics = None
            if self.runtime is not None:
                self.runtime.close()
            self._lock.release()
        return 0

    def _start(self) -> None:
        self.runtime = Runtime.create(self.config)
        self.state = self.runtime.state
        self.live = LiveStatus(self.state, self.queue.counts)
        log.info("drbackup daemon starting (pid %d, state %s)", os.getpid(), self.state_dir,
                 extra={"event": "starting"})
        self._recover()
        self._check_stores()
        self._start_metrics()
        self.watcher = Watcher(self.sources, faults=self.faults)
        self.sources.attach(self.live, self.watcher)
        self._apply_config(self.config, first=True)
        self.notifier.ready(self._summary())
        log.info("ready: %d agencies, %d sources", len(self.config.agencies),
                 len(self.sources.slots), extra={"event": "ready"})

    def _start_metrics(self) -> None:
        """The Prometheus endpoint on daemon.metrics_listen, fed by the state DB and `live`.
        A port that cannot be bound is logged, not fatal: backups matter more than their
        metrics, and Prometheus then reports the target down (DrBackupDaemonAbsent)."""
        from drbackup.metrics import serve_metrics  # prometheus_client only in the daemon

        assert self.state is not None
        try:
            self.metrics = serve_metrics(self.config, self.state, self.live)
        except DrBackupError as exc:
            log.error("metrics endpoint not started: %s", exc.one_line(),
                      extra={"event": "metrics_failed"})

    def _recover(self) -> None:
        """Close runs a crash left open. Their repositories get a plain `restic unlock` (stale
        locks only) as the first step of the next job on them: inside the queue, so nothing
        else runs on that repository meanwhile, and a store that is down does not hold up
        start-up."""
        assert self.state is not None
        for run in self.state.interrupt_unfinished_runs():
            log.warning("run %d (%s %s/%s) was left open by a stop or crash: marked interrupted",
                        run.id, run.job, run.agency, run.source or "-",
                        extra={"agency": run.agency, "source": run.source, "job": run.job,
                               "run_id": run.id, "event": "run_interrupted"})
            if run.store is not None or run.source is not None:
                # Any job on a repository may have left a restic lock; unlock is harmless.
                try:
                    store = run.store or self.config.agency(run.agency).store
                except DrBackupError:
                    continue  # the agency left the config
                self.repositories.needs_unlock(run.agency, store)

    def _check_stores(self) -> None:
        assert self.runtime is not None
        try:
            self.runtime.restic.require_supported()
        except DrBackupError as exc:
            log.error("%s", exc.one_line(), extra={"event": "restic_unusable"})
        names = sorted({a.store for a in self.config.agencies}
                       | {r for a in self.config.agencies for r in a.replicas})
        for name in names:
            local = self.config.store(name).path
            read_only = read_only_problem(local) if local is not None else None
            if read_only is not None:
                # Every backup would fail with restic's own EROFS lines; say why once, here.
                log.error("store %s is not usable now: %s", name, read_only,
                          extra={"store": name, "event": "store_unusable"})
            try:
                self.runtime.check_store(name)
            except DrBackupError as exc:
                log.error("store %s is not usable now: %s", name, exc.one_line(),
                          extra={"store": name, "event": "store_unusable"})

    def _loop(self) -> None:
        while not self._stop_requested:
            self._wake.wait(TICK_SECONDS)
            self._wake.clear()
            if self._stop_requested:
                break
            if self._reload_requested:
                self._reload_requested = False
                self._reload()
            now = time.time()
            self._tick(now)
            self.queue.dispatch()
            self.status.beat()
            self._report(now)

    def _shutdown(self) -> None:
        self._stopping = True
        grace = self.config.daemon.stop_grace.total_seconds()
        dropped = self.queue.stop_accepting()
        running, _ = self.queue.counts()
        self.notifier.stopping(f"stopping: {running} job(s) finishing, {dropped} dropped")
        log.info("stopping: %d running job(s) get %.0fs to finish; %d queued dropped",
                 running, grace, dropped, extra={"event": "stopping"})
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        if not self.queue.wait_idle(grace):
            count = RUNNING.terminate_all()
            log.warning("grace period over: stopping %d restic process(es)", count,
                        extra={"event": "terminate"})
            if not self.queue.wait_idle(KILL_AFTER_TERM_SECONDS):
                log.error("jobs still running after SIGTERM; exiting anyway",
                          extra={"event": "terminate_failed"})
        self._report(time.time(), force=True, stopping=True)
        log.info("stopped", extra={"event": "stopped"})

    # -- configuration ----------------------------------------------------------------------

    def _reload(self) -> None:
        self.notifier.reloading()
        try:
            config = load_config(self.config_path)
        except DrBackupError as exc:
            log.error("reload refused, still running on the previous config: %s",
                      exc.one_line(), extra={"event": "reload_failed"})
            self.notifier.reloaded(self._summary())
            return
        if config.daemon.state_dir != self.config.daemon.state_dir:
            log.warning("daemon.state_dir changed: takes effect at the next restart",
                        extra={"event": "reload"})
        self._apply_config(config, first=False)
        log.info("config reloaded: %d agencies, %d sources", len(config.agencies),
                 len(self.sources.slots), extra={"event": "reloaded"})
        self.notifier.reloaded(self._summary())

    def _apply_config(self, config: Config, *, first: bool) -> None:
        assert self.state is not None and self.live is not None and self.watcher is not None
        old = self.config
        self.config = self.sources.config = config
        self.runtime = Runtime(config=config, restic=restic_for(config), _state=self.state)
        if self.metrics is not None:
            self.metrics.update_config(config)
        self.queue.max_concurrent = config.daemon.max_concurrent_jobs
        now = time.time()
        self.sources.apply(config, old, first=first, now=now)
        self._apply_tasks(config, now)
        self.fleet.apply(config, now, first=first)

    def _apply_tasks(self, config: Config, now: float) -> None:
        wanted: dict[tuple[str, str, str], TaskSlot] = {}
        for task in PERIODIC_TASKS:
            for agency in config.agencies:
                text = task.schedule(config, agency)
                if not text:
                    continue
                try:
                    parsed = parse_schedule(text)
                except ValueError as exc:
                    log.error("%s of %s is not scheduled: %s", task.kind, agency.id, exc,
                              extra={"agency": agency.id, "job": task.kind,
                                     "event": "bad_schedule"})
                    continue
                for store in task.stores(agency):
                    key = (task.kind, agency.id, store)
                    existing = self._tasks.get(key)
                    if existing is not None and existing.schedule == parsed:
                        existing.task = task
                        wanted[key] = existing
                        continue
                    wanted[key] = TaskSlot(task, agency.id, store, parsed, next_run(
                        parsed, now, key="/".join(key),
                        max_jitter=config.daemon.schedule_jitter.total_seconds()))
        self._tasks = wanted

    # -- the tick ---------------------------------------------------------------------------

    def _tick(self, now: float) -> None:
        self.sources.tick(now)
        self.fleet.tick(now, self.config)
        for task_slot in self._tasks.values():
            if now >= task_slot.next_scheduled:
                self._submit_task(task_slot.task, task_slot.agency, task_slot.store, "schedule")
                task_slot.next_scheduled = next_run(
                    task_slot.schedule, now, key=f"{task_slot.task.kind}/{task_slot.agency}/"
                    f"{task_slot.store}",
                    max_jitter=self.config.daemon.schedule_jitter.total_seconds())

    # -- jobs -------------------------------------------------------------------------------

    def _submit_task(self, task: PeriodicTask | FollowUp, agency_id: str, store: str,
                     trigger: str) -> None:
        runtime_config = self.config

        def run(job: Job) -> None:
            rt = self._runtime()
            agency = rt.config.agency(agency_id)
            if not task.probe:  # a probe holds no repository: it must not unlock one
                self.repositories.unlock_if_needed(rt, agency, store)
            task.run(rt, agency, store, trigger)

        also: tuple[tuple[str, str], ...] = ()
        if task.also_lock_primary:
            primary = find_agency(runtime_config, agency_id)
            if primary is not None and primary.store != store:
                also = ((agency_id, primary.store),)
        self.queue.submit(Job(task.kind, agency_id, store, None, run, trigger=trigger,
                              timeout=task.timeout(runtime_config).total_seconds()
                              + JOB_TIMEOUT_MARGIN, also_locks=also, probe=task.probe))
        self._wake.set()

    # -- reporting --------------------------------------------------------------------------

    def progress_ok(self) -> bool:
        """The loop ran recently and no worker is past its timeout."""
        return self.status.progress_ok()

    def _summary(self) -> str:
        return self.status.summary(len(self.config.agencies), len(self.sources.slots))

    def _report(self, now: float, *, force: bool = False, stopping: bool = False) -> None:
        assert self.live is not None
        self.status.report(now, self.live, self.sources.slots, len(self.config.agencies),
                           force=force, stopping=stopping)

    def _runtime(self) -> Runtime:
        assert self.runtime is not None
        return self.runtime
