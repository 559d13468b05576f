"""The daemon's per-source scheduler: one slot per configured source, turning file changes
(it is the watcher's ChangeSink), schedules, reconciliation (a full run every rpo/2) and catch-up
after a store back-off into queued backup jobs. The backup job itself is
jobs/daemon_backup.py's; here is what the daemon does around it: postpone it while its store
backs off, back off after failures, and queue the follow-ups of a good backup."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from drbackup.config import Config
from drbackup.config.models import AgencyConfig, DirectorySource, DumpdirSource, Source
from drbackup.config.schedule import ParsedSchedule, parse_schedule
from drbackup.daemon.live import LiveStatus
from drbackup.daemon.queue import Job, JobQueue
from drbackup.daemon.schedule import next_run
from drbackup.daemon.tasks import FOLLOW_UPS, FollowUp
from drbackup.daemon.watcher import SourceKey, Watcher, is_watch_limit
from drbackup.engine.runner import KILL_AFTER_TERM_SECONDS
from drbackup.errors import DrBackupError, ExitCode, StateError
from drbackup.jobs.backoff import STORE_BACKOFFS
from drbackup.jobs.daemon_backup import KnownRepositories, backup_in_daemon
from drbackup.jobs.runtime import Runtime

log = logging.getLogger("drbackup.daemon")

WATCH_RETRY_SECONDS = 300.0
MAX_PENDING_PATHS = 100_000
FAILURE_BACKOFF_BASE = 30.0
JOB_TIMEOUT_MARGIN = KILL_AFTER_TERM_SECONDS + 30.0
DUMPDIR_SETTLE_MARGIN = 2.0

# submit_task(follow_up, agency, store, trigger): the daemon queues a follow-up job.
SubmitTask = Callable[[FollowUp, str, str, str], None]


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


class SourceScheduler:
    """Owned by the Daemon; `attach` gives it the live view and the watcher once they exist,
    `apply` (re)sets the slots from a config, the main loop calls `tick`."""

    def __init__(self, config: Config, queue: JobQueue, *, wake: Callable[[], None],
                 runtime: Callable[[], Runtime], repositories: KnownRepositories,
                 submit_task: SubmitTask, stop_requested: Callable[[], bool]):
        self.config = config
        # By id: the tick looks up every slot's agency 4 times a second; Config.agency scans
        # the list, which made each tick quadratic (1,500 sources x 500 agencies: ~20 ms).
        self._agencies: dict[str, AgencyConfig] = {a.id: a for a in config.agencies}
        self.queue = queue
        self._wake = wake
        self._runtime = runtime
        self._repositories = repositories
        self._submit_task = submit_task
        self._stop_requested = stop_requested
        self._changes_lock = threading.Lock()
        self.slots: dict[SourceKey, SourceSlot] = {}
        self.live: LiveStatus | None = None
        self.watcher: Watcher | None = None

    def attach(self, live: LiveStatus, watcher: Watcher) -> None:
        self.live, self.watcher = live, watcher

    def apply(self, config: Config, old: Config, *, first: bool, now: float) -> None:
        """Slots for the sources of `config`: removed ones go, new or changed ones are set up
        from scratch (a new one is backed up at once), unchanged ones keep their state."""
        assert self.live is not None and self.watcher is not None
        self.config = config
        self._agencies = {a.id: a for a in config.agencies}
        old_agencies = {a.id: a for a in old.agencies}
        wanted: dict[SourceKey, tuple[AgencyConfig, Source]] = {
            (a.id, s.id): (a, s) for a in config.agencies for s in a.sources}
        for key in list(self.slots):
            if key not in wanted:
                self.watcher.unwatch(key)
                self.watcher.unpoll(key)
                self.live.forget_source(key)
                del self.slots[key]
                log.info("source removed from the config", extra=_fields(key))
        for key, (agency, source) in wanted.items():
            slot = self.slots.get(key)
            old_agency = None if first else old_agencies.get(agency.id)
            if slot is not None and slot.source == source and old_agency is not None and (
                    old_agency.rpo == agency.rpo and old_agency.store == agency.store):
                continue
            new = slot is None
            if slot is not None:
                self.watcher.unpoll(key)  # re-set from scratch below
            slot = SourceSlot(agency.id, source, parse_schedule(source.schedule)
                              if source.schedule else None)
            self.slots[key] = slot
            self._schedule_next(slot, now)
            slot.next_reconcile = now + agency.rpo.total_seconds() / 2
            self._watch(slot, agency)
            if new:
                self._submit_backup(slot, "startup" if first else "reload")

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
            slot = self.slots.get(key)
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
            slot = self.slots.get(key)
            if slot is not None:
                slot.pending.clear()
                slot.first_change = slot.last_change = None
                self._submit_backup(slot, "overflow")
        self._wake()

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
        slot = self.slots.get(key)
        if slot is not None:
            # Not (fully) watched: schedule and reconciliation carry it; retry the watch later.
            slot.watched = False
            slot.watch_retry_at = time.time() + WATCH_RETRY_SECONDS
            slot.poll_wanted = True  # started by the main loop: the first scan walks the tree
            self.live.set_watched(key, False)
            self._submit_backup(slot, "watch-fallback")
            self._wake()

    # -- the tick ---------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        assert self.live is not None
        for slot in list(self.slots.values()):
            agency = self._agencies[slot.agency]  # apply() keeps slots and agencies in step
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

    # -- the backup job ---------------------------------------------------------------------

    def _submit_backup(self, slot: SourceSlot, trigger: str) -> None:
        agency_id, source = slot.agency, slot.source
        agency = self._agencies.get(agency_id)
        if agency is None:
            return
        store = agency.store
        if not STORE_BACKOFFS.ready(store, time.time()):
            self._defer(slot, store)
            return
        job = Job("backup", agency_id, store, source.id, self._backup_job, trigger=trigger,
                  timeout=source.timeout.total_seconds() + JOB_TIMEOUT_MARGIN)
        outcome = self.queue.submit(job)
        log.debug("backup %s (%s)", outcome, trigger, extra=_fields(slot.key))
        self._wake()

    def _defer(self, slot: SourceSlot, store: str) -> None:
        """The store is unreachable and backing off: remember the backup instead of failing it
        on every trigger; tick submits it once the back-off ends."""
        if slot.deferred:
            return
        slot.deferred = True
        log.info("backup postponed: store %s is unreachable (back-off, %.0fs left); it runs as "
                 "soon as the store answers", store, STORE_BACKOFFS.get(store).remaining(
                     time.time()), extra={**_fields(slot.key), "event": "backoff_wait"})

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
            slot = self.slots.get(key)  # queued before the store went down: postpone it
            if slot is not None:
                self._defer(slot, agency.store)
            return
        try:
            backup_in_daemon(rt, agency, source, trigger=job.trigger,
                             repositories=self._repositories, log_fields=job.log_fields())
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
        slot = self.slots.get(key)
        if slot is None or self._stop_requested():
            return
        now = time.time()
        agency = self._agencies.get(key[0])
        if agency is None:
            return
        rpo = agency.rpo.total_seconds()
        if ok:
            slot.failures = 0
            slot.next_reconcile = now + rpo / 2
        else:
            slot.failures += 1
            backoff = FAILURE_BACKOFF_BASE * 2 ** min(slot.failures - 1, 6)
            slot.next_reconcile = now + min(rpo / 2, backoff)


def _fields(key: SourceKey) -> dict[str, str]:
    return {"agency": key[0], "source": key[1]}


def find_agency(config: Config, agency_id: str) -> AgencyConfig | None:
    for agency in config.agencies:
        if agency.id == agency_id:
            return agency
    return None


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
