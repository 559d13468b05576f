"""The daemon's main loop: turns file changes, schedules and reconciliation into queued jobs,
keeps systemd informed, reloads on SIGHUP and stops cleanly on SIGTERM.

Start-up order: single-instance lock → state DB → close runs a crash left open and run plain
`restic unlock` (stale locks only) on their repositories → check the stores → watch sources →
READY=1 → one backup of every source (changes made while we were down are unknown) → loop.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from drbackup.config import Config, load_config
from drbackup.config.models import AgencyConfig, DirectorySource, DumpdirSource, Source
from drbackup.config.schedule import ParsedSchedule, parse_schedule
from drbackup.config.unit import read_only_problem
from drbackup.daemon.instance import InstanceLock
from drbackup.daemon.live import LiveStatus
from drbackup.daemon.notify import Notifier
from drbackup.daemon.queue import Job, JobQueue
from drbackup.daemon.schedule import next_run
from drbackup.daemon.status import StatusReporter
from drbackup.daemon.tasks import FOLLOW_UPS, PERIODIC_TASKS, FollowUp, PeriodicTask
from drbackup.daemon.watcher import SourceKey, Watcher, WatchFaults, is_watch_limit
from drbackup.engine import RUNNING
from drbackup.engine.runner import KILL_AFTER_TERM_SECONDS
from drbackup.errors import DrBackupError, ExitCode, StateError
from drbackup.jobs.backoff import STORE_BACKOFFS
from drbackup.jobs.daemon_backup import KnownRepositories, backup_in_daemon
from drbackup.jobs.runtime import Runtime, restic_for
from drbackup.state import StateDB

if TYPE_CHECKING:
    from drbackup.metrics import MetricsServer

log = logging.getLogger("drbackup.daemon")

TICK_SECONDS = 0.25
WATCH_RETRY_SECONDS = 300.0
MAX_PENDING_PATHS = 100_000
FAILURE_BACKOFF_BASE = 30.0
JOB_TIMEOUT_MARGIN = KILL_AFTER_TERM_SECONDS + 30.0


@dataclass
class SourceSlot:
    """What the loop knows about one source."""

    agency: str
    source: Source
    schedule: ParsedSchedule | None
    next_scheduled: float | None = None
    next_reconcile: float = 0.0
    failures: int = 0
    watched: bool = False
    watch_retry_at: float | None = None
    polling: bool = False  # scanned every daemon.poll_interval instead of (fully) watched
    poll_wanted: bool = False
    pending: set[str] = field(default_factory=set)
    pending_overflowed: bool = False
    first_change: float | None = None
    last_change: float | None = None
    # A backup was due while its store was backing off (unreachable): it runs as soon as the
    # back-off ends (the store health probe ends it the moment the store answers again).
    deferred: bool = False

    @property
    def key(self) -> SourceKey:
        return (self.agency, self.source.id)


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
        self._changes_lock = threading.Lock()
        self._slots: dict[SourceKey, SourceSlot] = {}
        self._tasks: dict[tuple[str, str, str], TaskSlot] = {}
        self.repositories = KnownRepositories()
        self.state: StateDB | None = None
        self.runtime: Runtime | None = None
        self.queue = JobQueue(config.daemon.max_concurrent_jobs, on_change=self._wake.set)
        self.status = StatusReporter(config_path, self.state_dir, self.queue, self.notifier)
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
        self.watcher = Watcher(self, faults=self.faults)
        self._apply_config(self.config, first=True)
        self.notifier.ready(self._summary())
        log.info("ready: %d agencies, %d sources", len(self.config.agencies), len(self._slots),
                 extra={"event": "ready"})

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
                 len(self._slots), extra={"event": "reloaded"})
        self.notifier.reloaded(self._summary())

    def _apply_config(self, config: Config, *, first: bool) -> None:
        assert self.state is not None and self.live is not None and self.watcher is not None
        old = self.config
        self.config = config
        self.runtime = Runtime(config=config, restic=restic_for(config), _state=self.state)
        if self.metrics is not None:
            self.metrics.update_config(config)
        self.queue.max_concurrent = config.daemon.max_concurrent_jobs
        now = time.time()
        wanted: dict[SourceKey, tuple[AgencyConfig, Source]] = {
            (a.id, s.id): (a, s) for a in config.agencies for s in a.sources}
        for key in list(self._slots):
            if key not in wanted:
                self.watcher.unwatch(key)
                self.watcher.unpoll(key)
                self.live.forget_source(key)
                del self._slots[key]
                log.info("source removed from the config", extra=_fields(key))
        for key, (agency, source) in wanted.items():
            slot = self._slots.get(key)
            old_agency = None if first else _find_agency(old, agency.id)
            if slot is not None and slot.source == source and old_agency is not None and (
                    old_agency.rpo == agency.rpo and old_agency.store == agency.store):
                continue
            new = slot is None
            if slot is not None:
                self.watcher.unpoll(key)  # re-set from scratch below
            slot = SourceSlot(agency.id, source, parse_schedule(source.schedule)
                              if source.schedule else None)
            self._slots[key] = slot
            self._schedule_next(slot, now)
            slot.next_reconcile = now + agency.rpo.total_seconds() / 2
            self._watch(slot, agency)
            if new:
                self._submit_backup(slot, "startup" if first else "reload")
        self._apply_tasks(config, now)

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

    def _schedule_next(self, slot: SourceSlot, now: float) -> None:
        if slot.schedule is None:
            slot.next_scheduled = None
        else:
            slot.next_scheduled = next_run(
                slot.schedule, now, key=f"{slot.agency}/{slot.source.id}",
                max_jitter=self.config.daemon.schedule_jitter.total_seconds())

    def _watch(self, slot: SourceSlot, agency: AgencyConfig) -> None:
        assert self.watcher is not None and self.live is not None
        source = slot.source
        # watch_failed() (called during watch() for the root or any subdirectory) turns
        # these back off and sets the retry time.
        slot.watched, slot.watch_retry_at = True, None
        if isinstance(source, DirectorySource) and source.watch:
            ok = self.watcher.watch(slot.key, source.paths, source.exclude)
        elif isinstance(source, DumpdirSource):
            ok = self.watcher.watch(slot.key, [source.path])
        else:  # database sources: schedule and reconciliation only
            self.watcher.unwatch(slot.key)
            slot.watched = False
            self.live.set_watched(slot.key, False)
            return
        if not ok:
            slot.watched = False
            slot.watch_retry_at = slot.watch_retry_at or time.time() + WATCH_RETRY_SECONDS
        elif slot.watched and slot.polling:
            self.watcher.unpoll(slot.key)  # inotify works again: no more scanning
            slot.polling = slot.poll_wanted = False
            log.info("watching again; scanning stopped", extra=_fields(slot.key))
        self.live.set_watched(slot.key, slot.watched)

    def _start_polling(self, slot: SourceSlot) -> None:
        assert self.watcher is not None
        slot.poll_wanted = False
        interval = self.config.daemon.poll_interval.total_seconds()
        source = slot.source
        if interval <= 0 or slot.polling:
            return
        if isinstance(source, DirectorySource):
            paths, excludes = list(source.paths), list(source.exclude)
        elif isinstance(source, DumpdirSource):
            paths, excludes = [source.path], []
        else:
            return
        slot.polling = self.watcher.poll(slot.key, paths, excludes, interval)
        if slot.polling:
            log.info("scanning for changes every %.0fs instead of watching", interval,
                     extra={**_fields(slot.key), "event": "polling"})

    # -- watcher callbacks (watchdog threads) -----------------------------------------------

    def changed(self, key: SourceKey, path: str) -> None:
        now = time.time()
        with self._changes_lock:
            slot = self._slots.get(key)
            if slot is None:
                return
            if len(slot.pending) < MAX_PENDING_PATHS:
                slot.pending.add(path)
            else:
                slot.pending_overflowed = True
            if slot.first_change is None:
                slot.first_change = now
            slot.last_change = now

    def overflowed(self, key: SourceKey) -> None:
        assert self.live is not None
        count = self.live.count_overflow(key)
        log.warning("inotify queue overflow: file events for this source were lost; "
                    "running a full backup (overflow #%d)", count,
                    extra={**_fields(key), "event": "watch_overflow"})
        with self._changes_lock:
            slot = self._slots.get(key)
            if slot is not None:
                slot.pending.clear()
                slot.first_change = slot.last_change = None
                self._submit_backup(slot, "overflow")
        self._wake.set()

    def watch_failed(self, key: SourceKey, error: OSError) -> None:
        assert self.live is not None
        if is_watch_limit(error):
            count = self.live.count_watch_error(key)
            log.error("cannot watch this source (%s; raise fs.inotify.max_user_watches / "
                      "max_user_instances): falling back to scanning every %s plus scheduled "
                      "and reconciliation runs; running a full backup now (watch error #%d)",
                      error, self.config.daemon.poll_interval, count,
                      extra={**_fields(key), "event": "watch_limit"})
        else:
            log.error("cannot watch this source (%s): relying on scheduled runs", error,
                      extra={**_fields(key), "event": "watch_failed"})
        slot = self._slots.get(key)
        if slot is not None:
            # Not (fully) watched: schedule and reconciliation carry it; retry the watch later.
            slot.watched = False
            slot.watch_retry_at = time.time() + WATCH_RETRY_SECONDS
            slot.poll_wanted = True  # started by the main loop: the first scan walks the tree
            self.live.set_watched(key, False)
            self._submit_backup(slot, "watch-fallback")
            self._wake.set()

    # -- the tick ---------------------------------------------------------------------------

    def _tick(self, now: float) -> None:
        assert self.live is not None
        for slot in list(self._slots.values()):
            agency = self.config.agency(slot.agency)
            with self._changes_lock:
                pending = len(slot.pending) + (1 if slot.pending_overflowed else 0)
                due = False
                if pending and slot.last_change is not None and slot.first_change is not None:
                    quiet = now - slot.last_change >= _debounce(slot.source)
                    overdue = now - slot.first_change >= _max_delay(slot.source)
                    due = quiet or overdue
                if due:
                    slot.pending.clear()
                    slot.pending_overflowed = False
                    slot.first_change = slot.last_change = None
            self.live.set_pending(slot.key, 0 if due else pending)
            if due:
                self._submit_backup(slot, "watch")
            if slot.next_scheduled is not None and now >= slot.next_scheduled:
                self._submit_backup(slot, "schedule")
                self._schedule_next(slot, now)
            if now >= slot.next_reconcile:
                # Reconciliation: whatever the watcher says, a full run every rpo/2.
                slot.next_reconcile = now + agency.rpo.total_seconds() / 2
                self._submit_backup(slot, "reconcile")
            if slot.deferred and STORE_BACKOFFS.ready(agency.store, now):
                slot.deferred = False
                log.info("store %s reachable again: running the postponed backup",
                         agency.store, extra={**_fields(slot.key), "event": "catch_up"})
                self._submit_backup(slot, "catch-up")
            if slot.poll_wanted:
                self._start_polling(slot)
            if (not slot.watched and slot.watch_retry_at is not None
                    and now >= slot.watch_retry_at):
                self._watch(slot, agency)
            upcoming = [t for t in (slot.next_scheduled, slot.next_reconcile) if t is not None]
            self.live.set_next_run(slot.key, min(upcoming) if upcoming else None)
        for task_slot in self._tasks.values():
            if now >= task_slot.next_scheduled:
                self._submit_task(task_slot.task, task_slot.agency, task_slot.store, "schedule")
                task_slot.next_scheduled = next_run(
                    task_slot.schedule, now, key=f"{task_slot.task.kind}/{task_slot.agency}/"
                    f"{task_slot.store}",
                    max_jitter=self.config.daemon.schedule_jitter.total_seconds())

    # -- jobs -------------------------------------------------------------------------------

    def _submit_backup(self, slot: SourceSlot, trigger: str) -> None:
        agency_id, source = slot.agency, slot.source
        try:
            store = self.config.agency(agency_id).store
        except DrBackupError:
            return
        if not STORE_BACKOFFS.ready(store, time.time()):
            self._defer(slot, store)
            return
        job = Job("backup", agency_id, store, source.id, self._backup_job, trigger=trigger,
                  timeout=source.timeout.total_seconds() + JOB_TIMEOUT_MARGIN)
        outcome = self.queue.submit(job)
        log.debug("backup %s (%s)", outcome, trigger, extra=_fields(slot.key))
        self._wake.set()

    def _defer(self, slot: SourceSlot, store: str) -> None:
        """The store is unreachable and backing off: remember the backup instead of failing it
        on every trigger; _tick submits it once the back-off ends."""
        if slot.deferred:
            return
        slot.deferred = True
        log.info("backup postponed: store %s is unreachable (back-off, %.0fs left); it runs as "
                 "soon as the store answers", store, STORE_BACKOFFS.get(store).remaining(
                     time.time()), extra={**_fields(slot.key), "event": "backoff_wait"})

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
            primary = _find_agency(runtime_config, agency_id)
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
        return self.status.summary(len(self.config.agencies), len(self._slots))

    def _report(self, now: float, *, force: bool = False, stopping: bool = False) -> None:
        assert self.live is not None
        self.status.report(now, self.live, self._slots, len(self.config.agencies),
                           force=force, stopping=stopping)

    def _runtime(self) -> Runtime:
        assert self.runtime is not None
        return self.runtime

    def _backup_job(self, job: Job) -> None:
        rt = self._runtime()
        assert job.source is not None
        try:
            agency = rt.config.agency(job.agency)
            source = agency.source(job.source)
        except DrBackupError:
            log.info("skipped: no longer in the config", extra=job.log_fields())
            return
        key = (job.agency, job.source)
        if not STORE_BACKOFFS.ready(agency.store, time.time()):
            slot = self._slots.get(key)  # queued before the store went down: postpone it
            if slot is not None:
                self._defer(slot, agency.store)
            return
        try:
            backup_in_daemon(rt, agency, source, trigger=job.trigger,
                             repositories=self.repositories, log_fields=job.log_fields())
        except DrBackupError as exc:
            self._after_backup(key, ok=False)
            if isinstance(exc, StateError):
                # The run could not be recorded (or not finished): the job's one line, since
                # the state database that would have told it cannot.
                log.error("backup failed, state not writable: %s", exc.one_line(),
                          extra={**job.log_fields(), "event": "state_error"})
            if exc.exit_code == ExitCode.STORE_UNREACHABLE:
                next_at = STORE_BACKOFFS.failure(agency.store, time.time(), exc.one_line())
                log.warning("store %s unreachable: backups on it back off until %s, or until "
                            "the store health probe reaches it", agency.store,
                            time.strftime("%H:%M:%S", time.localtime(next_at)),
                            extra={**job.log_fields(), "event": "backoff"})
            raise
        STORE_BACKOFFS.success(agency.store)
        self._after_backup(key, ok=True)
        for follow_up in FOLLOW_UPS:
            if "backup" in follow_up.after and follow_up.enabled(rt.config, agency):
                for store in follow_up.stores(agency):
                    self._submit_task(follow_up, agency.id, store, "after-backup")

    def _after_backup(self, key: SourceKey, *, ok: bool) -> None:
        slot = self._slots.get(key)
        if slot is None or self._stop_requested:
            return
        now = time.time()
        try:
            rpo = self.config.agency(key[0]).rpo.total_seconds()
        except DrBackupError:
            return
        if ok:
            slot.failures = 0
            slot.next_reconcile = now + rpo / 2
        else:
            slot.failures += 1
            backoff = FAILURE_BACKOFF_BASE * 2 ** min(slot.failures - 1, 6)
            slot.next_reconcile = now + min(rpo / 2, backoff)


def _fields(key: SourceKey) -> dict[str, str]:
    return {"agency": key[0], "source": key[1]}


def _find_agency(config: Config, agency_id: str) -> AgencyConfig | None:
    for agency in config.agencies:
        if agency.id == agency_id:
            return agency
    return None


DUMPDIR_SETTLE_MARGIN = 2.0


def _debounce(source: Source) -> float:
    if isinstance(source, DirectorySource):
        return source.debounce.total_seconds()
    if isinstance(source, DumpdirSource):
        # A dropped file is taken once it has settled: wait that long after the last write.
        return 0.0 if source.marker else source.settle.total_seconds() + DUMPDIR_SETTLE_MARGIN
    return 0.0


def _max_delay(source: Source) -> float:
    if isinstance(source, DirectorySource):
        return source.max_delay.total_seconds()
    return max(_debounce(source), 300.0)
