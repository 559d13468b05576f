"""Replication: copy an agency's snapshots from its primary repository to each replica with
`restic copy`, confirm them on the replica, and record the replication lag.

- A replica repository is created with `init --copy-chunker-params` from the primary, so
  deduplication holds across the copy (same chunk boundaries, same blobs).
- Only snapshots missing on the replica are named to `restic copy`: a second run copies nothing,
  and a run interrupted half-way leaves packs that the next run reuses (restic skips blobs the
  destination already has) and completes.
- restic copy prints no JSON: the result is confirmed by listing the replica's snapshots and
  matching them to the primary's (a copy's `original` is the source snapshot's id).
- Lag = age of the oldest primary snapshot not yet on the replica, 0 when the replica is
  complete: how long data has existed only on the primary. Recorded in the run's details and in
  kv `replication:<agency>:<replica>` for metrics (drbackup_replication_lag_seconds).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta

from drbackup.config.models import AgencyConfig
from drbackup.engine import CopyCut, RepositoryMissing, ResticError, Snapshot
from drbackup.errors import DrBackupError, ExitCode, NotFoundError
from drbackup.jobs.backoff import STORE_BACKOFFS
from drbackup.jobs.recording import recorded_run
from drbackup.jobs.replica_site import OutsideCopyWindow, copy_time_left, refuse_wrong_site
from drbackup.jobs.runtime import Runtime
from drbackup.state import StateDB

log = logging.getLogger(__name__)
STATUS_KEY = "replication:{agency}:{replica}"


def snapshot_key(snapshot: Snapshot) -> str:
    """The identity of a snapshot across repositories: a copy's `original` names its source."""
    return snapshot.original or snapshot.id


@dataclass(frozen=True)
class ReplicationStatus:
    """What the replica lacks, measured at `measured_at` (epoch seconds)."""

    agency: str
    replica: str
    measured_at: float
    primary_snapshots: int
    replica_snapshots: int
    uncopied: list[str]  # primary snapshot ids not on the replica, oldest first
    oldest_uncopied_time: float | None  # epoch seconds

    @property
    def complete(self) -> bool:
        return not self.uncopied

    @property
    def lag_seconds(self) -> float:
        if self.oldest_uncopied_time is None:
            return 0.0
        return max(0.0, self.measured_at - self.oldest_uncopied_time)

    def lag_at(self, now: float) -> float:
        """The lag at a later time, assuming nothing was copied since the measurement."""
        if self.oldest_uncopied_time is None:
            return 0.0
        return max(0.0, now - self.oldest_uncopied_time)


@dataclass(frozen=True)
class ReplicationOutcome:
    run_id: int
    agency: str
    replica: str
    initialized: bool  # the replica repository was created by this run
    copied: list[str]  # primary snapshot ids copied by this run
    status: ReplicationStatus
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def lag_seconds(self) -> float:
        return self.status.lag_seconds


def compare(agency: str, replica: str, primary: list[Snapshot], copies: list[Snapshot],
            measured_at: float | None = None) -> ReplicationStatus:
    """Which primary snapshots the replica lacks. Matches by original id, and by (tree, time)
    as a fallback for copies made by other means."""
    present = {snapshot_key(s) for s in copies}
    present_trees = {(s.tree, s.time) for s in copies if s.tree}
    missing = [s for s in sorted(primary, key=lambda s: s.time)
               if snapshot_key(s) not in present and (s.tree, s.time) not in present_trees]
    return ReplicationStatus(
        agency=agency, replica=replica,
        measured_at=time.time() if measured_at is None else measured_at,
        primary_snapshots=len(primary), replica_snapshots=len(copies),
        uncopied=[s.id for s in missing],
        oldest_uncopied_time=missing[0].time.timestamp() if missing else None)


def _replicas(agency: AgencyConfig, replica: str | None) -> list[str]:
    if replica is None:
        return list(agency.replicas)
    if replica not in agency.replicas:
        known = ", ".join(agency.replicas) or "none"
        raise NotFoundError(f"store {replica!r} is not a replica of agency {agency.id!r}",
                            f"its replicas: {known} (set 'replicas' in the agency's config)")
    return [replica]


def replica_names(agency: AgencyConfig, replica: str | None = None) -> list[str]:
    """The agency's replicas, or just `replica` (checked to be one of them)."""
    return _replicas(agency, replica)


def _record_status(state: StateDB, status: ReplicationStatus, *, success: bool) -> None:
    payload = asdict(status)
    payload["lag_seconds"] = status.lag_seconds
    payload["complete"] = status.complete
    payload["last_attempt_ok"] = success
    previous = last_replication_status_raw(state, status.agency, status.replica)
    payload["last_success_at"] = status.measured_at if success else (
        previous or {}).get("last_success_at")
    state.set_value(STATUS_KEY.format(agency=status.agency, replica=status.replica),
                    json.dumps(payload, sort_keys=True))


def last_replication_status_raw(state: StateDB, agency: str, replica: str
                                ) -> dict[str, object] | None:
    return state.get_json_object(STATUS_KEY.format(agency=agency, replica=replica))


def last_replication_status(state: StateDB, agency: str, replica: str
                            ) -> ReplicationStatus | None:
    """The last recorded measurement (for metrics: lag now = status.lag_at(time.time()))."""
    raw = last_replication_status_raw(state, agency, replica)
    if raw is None:
        return None
    names = {f for f in ReplicationStatus.__dataclass_fields__}
    try:
        return ReplicationStatus(**{k: v for k, v in raw.items() if k in names})  # type: ignore[arg-type]
    except TypeError:
        return None


def measure_replication(rt: Runtime, agency: AgencyConfig, replica: str) -> ReplicationStatus:
    """Compare primary and replica without copying; records the lag in state. A replica
    repository that does not exist yet lacks every primary snapshot."""
    rt.restic.require_supported()
    rt.check_store(agency.store)
    primary = rt.restic.snapshots(rt.target(agency))
    rt.check_store(replica)
    try:
        copies = rt.restic.snapshots(rt.target(agency, replica))
    except RepositoryMissing:
        copies = []
    status = compare(agency.id, replica, primary, copies)
    _record_status(rt.state, status, success=status.complete)
    return status


def _replica_snapshots(rt: Runtime, agency: AgencyConfig, replica: str
                       ) -> tuple[list[Snapshot], bool]:
    """The replica's snapshots, creating its repository (with the primary's chunker
    parameters) and bucket when missing. Returns (snapshots, created)."""
    target = rt.target(agency, replica)
    s3 = rt.s3_store(replica)
    if s3 is not None:
        s3.ensure_bucket(create=rt.store_config(replica).create_bucket)
    try:
        return rt.restic.snapshots(target), False
    except RepositoryMissing:
        pass
    rt.restic.init(target, copy_chunker_params_from=rt.target(agency))
    log.info("replica repository created with the primary's chunker parameters",
             extra={"agency": agency.id, "store": replica})
    return [], True


def _previous_run_died(rt: Runtime, agency: AgencyConfig, replica: str, run_id: int) -> bool:
    """True when the last replication into this replica did not end cleanly (killed, crashed,
    interrupted): it may have left a lock behind."""
    for run in rt.state.runs(agency=agency.id, job="replicate", limit=20):
        if run.id == run_id or run.store != replica:
            continue
        return run.result in ("running", "interrupted")
    return False


def _lag_after_failure(rt: Runtime, agency: AgencyConfig, replica: str,
                       primary: list[Snapshot] | None) -> None:
    """Keep the recorded lag honest when a run fails: snapshots made since the last complete
    replication are still only on the primary."""
    previous = last_replication_status(rt.state, agency.id, replica)
    raw = last_replication_status_raw(rt.state, agency.id, replica) or {}
    now = time.time()
    oldest = previous.oldest_uncopied_time if previous else None
    uncopied = list(previous.uncopied) if previous else []
    if primary is not None:
        since = raw.get("last_success_at")
        cutoff = float(since) if isinstance(since, int | float) else None
        newer = [s for s in primary if cutoff is None or s.time.timestamp() > cutoff]
        if cutoff is not None or previous is None:
            uncopied = sorted(set(uncopied) | {s.id for s in newer})
            times = [s.time.timestamp() for s in newer]
            if oldest is not None:
                times.append(oldest)
            oldest = min(times) if times else oldest
    status = ReplicationStatus(agency.id, replica, now,
                               len(primary) if primary is not None else
                               (previous.primary_snapshots if previous else 0),
                               previous.replica_snapshots if previous else 0,
                               uncopied, oldest)
    _record_status(rt.state, status, success=False)


def run_replication(rt: Runtime, agency: AgencyConfig, replica: str, *, trigger: str = "cli"
                    ) -> ReplicationOutcome:
    """Copy every primary snapshot the replica lacks; confirm on the replica; record the run and
    the lag. Raises DrBackupError subclasses (store unreachable, restic failure, snapshots still
    missing after the copy, incompatible credentials)."""
    _replicas(agency, replica)
    primary: list[Snapshot] | None = None

    def failed(outcome: str, exc: DrBackupError) -> None:
        _lag_after_failure(rt, agency, replica, primary)
        log.error("replication %s: %s", outcome, exc.one_line(),
                  extra={**run.fields, "store": replica})

    with recorded_run(rt, "replicate", agency.id, store=replica, trigger=trigger,
                      failure_details=lambda: {"replica": replica}, on_failure=failed) as run:
        run_id = run.run_id
        fields = {"agency": agency.id, "store": replica, "job": "replicate",
                  "run_id": str(run_id)}
        started = time.monotonic()
        notes: list[str] = []
        rt.restic.require_supported()
        window_left = copy_time_left(rt, replica)
        rt.check_store(agency.store)
        primary = rt.restic.snapshots(rt.target(agency))
        copies, initialized = _replica_snapshots(rt, agency, replica)
        refuse_wrong_site(rt, agency, replica, copies)
        destination = rt.target(agency, replica)
        if _previous_run_died(rt, agency, replica, run_id):
            # A copy killed earlier (power cut, OOM) leaves its lock behind; restic removes only
            # stale ones (older than 30 min, or of a dead process on this host), never live ones.
            rt.restic.unlock(destination)
        before = compare(agency.id, replica, primary, copies)
        after = before
        if before.uncopied:
            log.info("copying %d snapshot(s)", len(before.uncopied), extra=fields)
            try:
                rt.restic.copy(rt.target(agency), destination, before.uncopied,
                               timeout=None if window_left is None
                               else timedelta(seconds=window_left))
            except CopyCut as cut:
                # The window closed mid-copy: what was copied stays (restic writes each
                # snapshot after its data); measure what is left so the lag stays right.
                left = compare(agency.id, replica, primary, rt.restic.snapshots(destination))
                _record_status(rt.state, left, success=False)
                raise CopyCut(
                    f"{cut.message}: {len(before.uncopied) - len(left.uncopied)} of "
                    f"{len(before.uncopied)} snapshot(s) copied, {len(left.uncopied)} left",
                    "the next run inside the copy window copies the rest") from None
            after = compare(agency.id, replica, primary, rt.restic.snapshots(destination))
        if after.uncopied:
            raise ResticError(
                f"restic copy to {destination.display} ended, but {len(after.uncopied)} "
                f"snapshot(s) are still missing on the replica: "
                f"{', '.join(i[:8] for i in after.uncopied[:5])}",
                "run 'drbackup replicate' again; see the log for restic's output")
        copied = [i for i in before.uncopied if i not in after.uncopied]
        _record_status(rt.state, after, success=True)
        seconds = time.monotonic() - started
        if initialized:
            notes.append("replica repository created (chunker parameters copied from the "
                         "primary)")
        run.finish("success", details={
            "replica": replica, "copied": len(copied), "copied_ids": copied[:200],
            "initialized": initialized, "primary_snapshots": after.primary_snapshots,
            "replica_snapshots": after.replica_snapshots, "lag_seconds": after.lag_seconds,
            "seconds": seconds})
    log.info("replication done: %d copied, replica complete", len(copied), extra=fields)
    return ReplicationOutcome(run_id, agency.id, replica, initialized, copied, after, seconds,
                              notes)


def _unreachable(exc: BaseException) -> bool:
    return isinstance(exc, DrBackupError) and exc.exit_code == ExitCode.STORE_UNREACHABLE


def replicate_job(rt: Runtime, agency: AgencyConfig, store: str, trigger: str
                  ) -> ReplicationOutcome | None:
    """The daemon's job-function form (rt, agency, store, trigger): copy into one replica.
    Registered as an after-backup follow-up and a periodic task (drbackup/daemon/tasks.py).

    While a store involved is unreachable the job backs off (STORE_BACKOFFS: exponential,
    capped; cleared by the first successful contact, e.g. a store health check) and returns
    None without starting restic; the lag keeps counting in state meanwhile."""
    try:
        copy_time_left(rt, store)
    except OutsideCopyWindow as closed:
        log.info("replication postponed: %s", closed.message,
                 extra={"agency": agency.id, "store": store, "job": "replicate",
                        "event": "window_closed"})
        _note_lag_while_postponed(rt, agency, store)
        return None
    now = time.time()
    for name in (agency.store, store):
        if not STORE_BACKOFFS.ready(name, now):
            log.info("replication to %s postponed: store %s backing off (%.0fs left)", store,
                     name, STORE_BACKOFFS.get(name).remaining(now),
                     extra={"agency": agency.id, "store": store, "job": "replicate",
                            "event": "backoff_wait"})
            if name == store:
                _note_lag_while_postponed(rt, agency, store)
            return None
    try:
        outcome = run_replication(rt, agency, store, trigger=trigger)
    except DrBackupError as exc:
        if _unreachable(exc):
            failed = store if _store_named(exc, store) else agency.store
            next_at = STORE_BACKOFFS.failure(failed, time.time(), exc.one_line())
            log.warning("store %s unreachable: replication backs off until %s", failed,
                        time.strftime("%H:%M:%S", time.localtime(next_at)),
                        extra={"agency": agency.id, "store": failed, "job": "replicate",
                               "event": "backoff"})
        raise
    STORE_BACKOFFS.success(agency.store)
    STORE_BACKOFFS.success(store)
    return outcome


def _note_lag_while_postponed(rt: Runtime, agency: AgencyConfig, replica: str) -> None:
    """Snapshots made while the replica is unreachable exist only on the primary: keep the
    recorded lag honest without touching the replica."""
    try:
        primary = rt.restic.snapshots(rt.target(agency))
    except DrBackupError:
        return
    _lag_after_failure(rt, agency, replica, primary)


def _store_named(exc: DrBackupError, store: str) -> bool:
    return f"store {store!r}" in exc.message or f"@{store}" in exc.message
