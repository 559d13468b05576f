"""Retention (forget) and prune, with the maintenance credentials.

`run_retention` asks restic for the plan (`forget --dry-run --json`: which snapshots go, which
stay and the rule that keeps each), refuses plans that are unsafe, and then forgets exactly the
planned snapshots by id, so what `--dry-run` shows is what a real run removes. Guards:

- keep_within is mandatory in the config: every snapshot younger than it (relative to the newest
  snapshot) survives, so injected junk snapshots cannot push real ones out of the buckets;
- a snapshot dated in the future (beyond a small clock skew) stops the run: it would move the
  keep_within window and could expire every real snapshot;
- a plan that would leave a snapshot group, or the agency, with zero snapshots is refused.

`run_prune` removes unreferenced data. Both use the store's maintenance_credentials_file (the
only key allowed to delete); prune must not overlap a backup of the same repository (the daemon's
queue serialises them on this host; restic's exclusive lock decides between hosts).

Both are the maintenance host's (jobs/maintenance.py): on any other host they are refused
before restic starts, and the repository's maintenance claims are never forgotten.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from drbackup.config.models import AgencyConfig, RetentionConfig
from drbackup.engine import (
    BackendAccessDenied,
    ForgetGroup,
    ForgetPolicy,
    Snapshot,
)
from drbackup.errors import ConfigError, DrBackupError, ExitCode
from drbackup.jobs.guard import require_unfrozen
from drbackup.jobs.maintenance import is_claim, require_configured_owner, require_owner
from drbackup.jobs.recording import recorded_run
from drbackup.jobs.repo_files_lock import repository_files_lock
from drbackup.jobs.runtime import Runtime

log = logging.getLogger(__name__)
GROUP_BY = "host,tags"
FUTURE_SKEW = timedelta(hours=1)


class RetentionRefused(DrBackupError):
    """A retention plan that would be unsafe to carry out."""

    exit_code = ExitCode.VERIFY_FAILED


@dataclass(frozen=True)
class PlannedSnapshot:
    id: str
    time: datetime
    tags: list[str]
    reasons: list[str]  # why it is kept (restic's matched rules); empty for removed ones


@dataclass(frozen=True)
class RetentionPlan:
    agency: str
    store: str
    keep: list[PlannedSnapshot]
    remove: list[PlannedSnapshot]

    @property
    def remove_ids(self) -> list[str]:
        return [s.id for s in self.remove]


@dataclass(frozen=True)
class RetentionOutcome:
    run_id: int
    agency: str
    store: str
    dry_run: bool
    plan: RetentionPlan
    removed: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class PruneOutcome:
    run_id: int
    agency: str
    store: str
    seconds: float


def forget_policy(retention: RetentionConfig) -> ForgetPolicy:
    return ForgetPolicy(keep_within=retention.keep_within, keep_hourly=retention.keep_hourly,
                        keep_daily=retention.keep_daily, keep_weekly=retention.keep_weekly,
                        keep_monthly=retention.keep_monthly, keep_yearly=retention.keep_yearly)


def _retention(agency: AgencyConfig) -> RetentionConfig:
    if agency.retention is None:
        raise ConfigError(f"agency {agency.id!r} has no retention policy",
                          "add [agencies.retention] with keep_within (and keep_daily, ...) "
                          "to the config; without it snapshots are never forgotten")
    return agency.retention


def _planned(snapshot: Snapshot, reasons: list[str]) -> PlannedSnapshot:
    return PlannedSnapshot(snapshot.id, snapshot.time, list(snapshot.tags), reasons)


def plan_retention(rt: Runtime, agency: AgencyConfig, store_name: str | None = None, *,
                   now: datetime | None = None) -> RetentionPlan:
    """restic's forget plan for the agency's repository, checked against the guards.
    Raises RetentionRefused for an unsafe plan, ConfigError without a retention policy,
    MaintenanceRefusedError on a host that is not the agency's maintenance host."""
    retention = _retention(agency)
    name = store_name or agency.store
    rt.restic.require_supported()
    rt.check_store(name)
    # Even for --dry-run: restic's forget takes the exclusive lock either way.
    require_owner(rt, agency, name, "forget")
    target = rt.target(agency, name, maintenance=True)
    snapshots = rt.restic.snapshots(target)
    groups = rt.restic.forget(target, forget_policy(retention), group_by=GROUP_BY, dry_run=True)
    keep, remove = checked_plan(agency.id, snapshots, groups, now or datetime.now(tz=UTC))
    return RetentionPlan(agency.id, name, keep, remove)


def checked_plan(agency_id: str, snapshots: list[Snapshot], groups: list[ForgetGroup],
                 now: datetime) -> tuple[list[PlannedSnapshot], list[PlannedSnapshot]]:
    """restic's forget groups as (keep, remove), oldest first, after the guards. Raises
    RetentionRefused for future-dated snapshots or a plan that empties a group or the agency."""
    future = [s for s in snapshots if s.time > now + FUTURE_SKEW]
    if future:
        first = max(future, key=lambda s: s.time)
        raise RetentionRefused(
            f"agency {agency_id!r} has {len(future)} snapshot(s) dated in the future (newest "
            f"{first.short_id} at {first.time.isoformat()}): keep_within counts from the newest "
            "snapshot, so they could expire every real one",
            "check this host's clock; if they are junk, remove them by id with restic, then "
            "run forget again")
    keep: list[PlannedSnapshot] = []
    remove: list[PlannedSnapshot] = []
    for group in groups:
        # The repository's record of its maintenance host (jobs/maintenance.py) stays.
        claims = [s for s in group.remove if is_claim(s)]
        removable = [s for s in group.remove if not is_claim(s)]
        if removable and not group.keep:
            raise RetentionRefused(
                f"the retention plan for agency {agency_id!r} would remove every snapshot of "
                f"group {','.join(group.tags) or group.host}",
                "check the retention settings; nothing was removed")
        keep += [_planned(s, group.reasons.get(s.id, [])) for s in group.keep]
        keep += [_planned(s, ["maintenance claim: never forgotten"]) for s in claims]
        remove += [_planned(s, []) for s in removable]
    if snapshots and not keep:
        raise RetentionRefused(f"the retention plan would leave agency {agency_id!r} with no "
                               "snapshot", "check the retention settings; nothing was removed")
    listed = {s.id for s in keep} | {s.id for s in remove}
    keep += [_planned(s, ["not in any forget group"]) for s in snapshots if s.id not in listed]
    keep.sort(key=lambda s: s.time)
    remove.sort(key=lambda s: s.time)
    return keep, remove


def _delete_hint(rt: Runtime, store_name: str) -> str:
    store = rt.store_config(store_name)
    if store.url is not None and store.maintenance_credentials_file is None:
        return (f"forget and prune delete objects: give store {store_name!r} a "
                "maintenance_credentials_file with the rights of config/policies/maintenance.json")
    return "check that the maintenance key has the rights of config/policies/maintenance.json"


def _maintenance_hint(rt: Runtime, store_name: str, exc: DrBackupError) -> DrBackupError:
    """A refused delete during forget/prune almost always means the daily key was used."""
    if not isinstance(exc, BackendAccessDenied):
        return exc
    return BackendAccessDenied(exc.message, _delete_hint(rt, store_name),
                               stderr_tail=exc.stderr_tail, returncode=exc.returncode)


@contextmanager
def _maintenance_errors(rt: Runtime, store_name: str) -> Iterator[None]:
    """A refused delete during forget/prune gets the maintenance-key hint."""
    try:
        yield
    except DrBackupError as exc:
        error = _maintenance_hint(rt, store_name, exc)
        if error is exc:
            raise
        raise error from None


def _apart_from_media(rt: Runtime, agency: AgencyConfig, store: str, what: str
                      ) -> AbstractContextManager[None]:
    """forget and prune delete files a media export of this host may be mirroring
    (jobs/repo_files_lock.py): they wait for it as restic waits for a lock."""
    return repository_files_lock(rt.config.daemon.state_dir, agency.id, store, exclusive=True,
                                 wait=rt.config.daemon.lock_wait.total_seconds(), what=what)


def run_retention(rt: Runtime, agency: AgencyConfig, *, dry_run: bool = False,
                  trigger: str = "cli", store_name: str | None = None) -> RetentionOutcome:
    """Plan, then (unless dry_run) forget exactly the planned snapshots by id and confirm they
    are gone. Recorded as a 'forget' run. Raises DrBackupError subclasses."""
    name = store_name or agency.store
    require_configured_owner(rt, agency, "forget")
    fields = {"agency": agency.id, "store": name, "job": "forget"}
    with recorded_run(rt, "forget", agency.id, store=name, trigger=trigger,
                      on_failure=lambda outcome, exc: log.error(
                          "forget %s: %s", outcome, exc.one_line(), extra=fields)) as run:
        run_id = run.run_id
        fields["run_id"] = str(run_id)
        started = time.monotonic()
        with _maintenance_errors(rt, name):
            if not dry_run:
                require_unfrozen(rt, agency, "forget")
            plan = plan_retention(rt, agency, name)
            removed: list[str] = []
            if not dry_run and plan.remove:
                target = rt.target(agency, name, maintenance=True)
                # By id, with no policy: restic removes exactly these and evaluates nothing else.
                with _apart_from_media(rt, agency, name, "forget"):
                    rt.restic.forget(target, ForgetPolicy(), group_by=GROUP_BY,
                                     snapshot_ids=plan.remove_ids)
                remaining = {s.id for s in rt.restic.snapshots(target)}
                still = [i for i in plan.remove_ids if i in remaining]
                if still:
                    # restic only warns when the store refuses a delete: confirm by listing.
                    raise RetentionRefused(
                        f"forget ended but {len(still)} planned snapshot(s) are still there (the "
                        "store refused to delete them)", _delete_hint(rt, name))
                removed = plan.remove_ids
        seconds = time.monotonic() - started
        run.finish("success", details={
            "dry_run": dry_run, "kept": len(plan.keep), "planned_remove": plan.remove_ids[:500],
            "removed": len(removed), "seconds": seconds})
    log.info("forget %s: keep %d, %s %d", "planned" if dry_run else "done", len(plan.keep),
             "would remove" if dry_run else "removed", len(plan.remove), extra=fields)
    return RetentionOutcome(run_id, agency.id, name, dry_run, plan, removed, seconds)


def run_prune(rt: Runtime, agency: AgencyConfig, *, trigger: str = "cli",
              store_name: str | None = None) -> PruneOutcome:
    """restic prune with the maintenance credentials, recorded as a 'prune' run."""
    name = store_name or agency.store
    require_configured_owner(rt, agency, "prune")
    with recorded_run(rt, "prune", agency.id, store=name, trigger=trigger) as run:
        run_id = run.run_id
        started = time.monotonic()
        with _maintenance_errors(rt, name):
            require_unfrozen(rt, agency, "prune")
            rt.restic.require_supported()
            require_owner(rt, agency, name, "prune")
            rt.check_store(name)
            with _apart_from_media(rt, agency, name, "prune"):
                rt.restic.prune(rt.target(agency, name, maintenance=True))
        seconds = time.monotonic() - started
        run.finish("success", details={"seconds": seconds})
    return PruneOutcome(run_id, agency.id, name, seconds)


def forget_job(rt: Runtime, agency: AgencyConfig, store: str, trigger: str) -> RetentionOutcome:
    """The daemon's job-function form: apply the retention policy to one repository (periodic
    task on `retention.schedule`, for the primary and each replica)."""
    return run_retention(rt, agency, trigger=trigger, store_name=store)


def prune_job(rt: Runtime, agency: AgencyConfig, store: str, trigger: str) -> PruneOutcome:
    """The daemon's job-function form: prune one repository (periodic task on
    `retention.prune_schedule`; the queue keeps it apart from backups of that repository)."""
    return run_prune(rt, agency, trigger=trigger, store_name=store)
