"""Measuring a repository (snapshot count, stored size) and recording it in state, where the
metrics drbackup_snapshots and drbackup_repository_size_bytes read it: a scrape never runs
restic, so the figures are as fresh as the last run of this job (or of a check/prune that
records the same details keys)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from drbackup.config.models import AgencyConfig
from drbackup.jobs.recording import recorded_run
from drbackup.jobs.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RepoStatsOutcome:
    run_id: int
    agency: str
    store: str
    snapshots: int
    repository_size_bytes: int


def record_repository_stats(rt: Runtime, agency: AgencyConfig, store_name: str | None = None,
                            *, trigger: str = "cli") -> RepoStatsOutcome:
    """One `restic stats --mode raw-data` on the agency's repository in the store; the result
    is a 'stats' run whose details carry snapshots and repository_size_bytes."""
    name = store_name or agency.store
    with recorded_run(rt, "stats", agency.id, store=name, trigger=trigger) as run:
        rt.restic.require_supported()
        rt.check_store(name)
        stats = rt.restic.stats(rt.target(agency, name), mode="raw-data")
        run.finish("success", details={
            "snapshots": stats.snapshots_count, "repository_size_bytes": stats.total_size})
    log.info("repository %s@%s: %d snapshots, %d bytes", agency.id, name,
             stats.snapshots_count, stats.total_size)
    return RepoStatsOutcome(run.run_id, agency.id, name, stats.snapshots_count, stats.total_size)
