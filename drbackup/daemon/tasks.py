"""THE place where the daemon learns which jobs exist besides backups.

Two kinds of entries:

- `PeriodicTask`: runs per agency and store on a schedule taken from the config (retention,
  prune, replication, store health, integrity checks, restore drills…).
- `FollowUp`: queued after a successful backup of an agency (e.g. copy to the replicas).

Wiring a new job kind in is a few lines: append an entry to `PERIODIC_TASKS` or `FOLLOW_UPS`
below whose `run` is the job function from drbackup/jobs/. The supervisor schedules each entry
through the same queue as backups, so the one-job-per-repository rule, the concurrency limit,
fairness, coalescing and timeouts apply to it unchanged. A job function raises DrBackupError for
expected failures and records its own run in state (as drbackup/jobs/backup.py does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from drbackup.config.models import AgencyConfig, Config
from drbackup.jobs.check import check_job
from drbackup.jobs.drills import drill_job
from drbackup.jobs.replicate import replicate_job
from drbackup.jobs.retention import forget_job, prune_job
from drbackup.jobs.runtime import Runtime
from drbackup.jobs.store_health import store_health_job

# rt, agency, store name, trigger
JobFunction = Callable[[Runtime, AgencyConfig, str, str], object]


def primary_store(agency: AgencyConfig) -> list[str]:
    return [agency.store]


def replica_stores(agency: AgencyConfig) -> list[str]:
    return list(agency.replicas)


def all_stores(agency: AgencyConfig) -> list[str]:
    return [agency.store, *agency.replicas]


def maintained_here(config: Config, agency: AgencyConfig, schedule: str | None) -> str | None:
    """A maintenance job's schedule (forget, prune, check: restic's exclusive lock) on the
    agency's maintenance host only; on every other host the job does not exist
    (drbackup/jobs/maintenance.py)."""
    return schedule if config.owns_maintenance(agency) else None


def _default_timeout(config: Config) -> timedelta:
    return config.daemon.restic_timeout


@dataclass(frozen=True)
class PeriodicTask:
    kind: str  # job kind: the runs table's `job` column, e.g. "forget", "check"
    run: JobFunction
    # The schedule string for this agency (same syntax as a source's `schedule`), or None when
    # the task is off for it. Read from the config on every reload.
    schedule: Callable[[Config, AgencyConfig], str | None]
    stores: Callable[[AgencyConfig], list[str]] = primary_store
    timeout: Callable[[Config], timedelta] = _default_timeout
    # Also hold the agency's primary repository while running (e.g. a copy into a replica
    # reads the primary): no other job runs on either meanwhile.
    also_lock_primary: bool = False
    # A probe starts no restic (e.g. one S3 request): it takes no repository and no concurrency
    # slot, so it runs even while a long job holds the repository.
    probe: bool = False


@dataclass(frozen=True)
class FollowUp:
    kind: str
    run: JobFunction
    after: frozenset[str] = field(default_factory=lambda: frozenset({"backup"}))
    enabled: Callable[[Config, AgencyConfig], bool] = lambda config, agency: True
    stores: Callable[[AgencyConfig], list[str]] = primary_store
    timeout: Callable[[Config], timedelta] = _default_timeout
    also_lock_primary: bool = False
    probe: bool = False


# Periodic tasks. More, e.g.
#   PeriodicTask("forget", run=jobs.retention.forget_job,
#                schedule=lambda config, agency: agency.retention.schedule)
PERIODIC_TASKS: list[PeriodicTask] = [
    # Verification (drbackup/jobs/check.py, drills/): repository check with rotating data
    # subsets (on the maintenance host only), and restore drills of every source this host
    # backs up; both read the primary repository.
    PeriodicTask("check", run=check_job,
                 schedule=lambda config, agency: maintained_here(
                     config, agency, agency.verify.check_schedule)),
    PeriodicTask("drill", run=drill_job,
                 schedule=lambda config, agency: agency.verify.drill_schedule),
    # Offsite (drbackup/jobs/replicate.py, retention.py, store_health.py): the replication
    # safety net (copies also follow every backup, below), retention and prune with the
    # maintenance key on the primary and every replica (on the agency's maintenance host
    # only), and store health probes (which also end a store's back-off as soon as it answers
    # again).
    PeriodicTask("replicate", run=replicate_job, stores=replica_stores, also_lock_primary=True,
                 schedule=lambda config, agency: agency.replicate_schedule
                 if agency.replicas else None),
    PeriodicTask("forget", run=forget_job, stores=all_stores,
                 schedule=lambda config, agency: maintained_here(
                     config, agency, agency.retention.schedule if agency.retention else None)),
    PeriodicTask("prune", run=prune_job, stores=all_stores,
                 schedule=lambda config, agency: maintained_here(
                     config, agency,
                     agency.retention.prune_schedule if agency.retention else None)),
    # A probe: it runs even while a backup waits in restic's retries on the same store, so the
    # store is reported down during an outage whatever else is running.
    PeriodicTask("store-health", run=store_health_job, stores=all_stores, probe=True,
                 schedule=lambda config, agency: config.store(agency.store).health_schedule),
]

# After-backup follow-ups, e.g.
#   FollowUp("copy", run=jobs.replication.run_copy, stores=replica_stores,
#            also_lock_primary=True, enabled=lambda config, agency: bool(agency.replicas))
FOLLOW_UPS: list[FollowUp] = [
    FollowUp("replicate", run=replicate_job, stores=replica_stores, also_lock_primary=True,
             enabled=lambda config, agency: bool(agency.replicas)),
]
