"""Creating an agency's repository in a store, idempotently; removing its stale locks."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from drbackup.config.models import AgencyConfig
from drbackup.jobs.recording import recorded_run
from drbackup.jobs.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InitOutcome:
    agency: str
    store: str
    url: str
    created: bool
    bucket_created: bool


def init_repository(rt: Runtime, agency: AgencyConfig, store_name: str | None = None
                    ) -> InitOutcome:
    """Make sure the agency's repository exists in the store (creating the bucket when the store
    allows it). Running it again changes nothing. Raises StoreError, WrongPassword, ResticError."""
    name = store_name or agency.store
    rt.restic.require_supported()
    bucket_created = False
    s3 = rt.s3_store(name)
    if s3 is not None:
        bucket_created = s3.ensure_bucket(create=rt.store_config(name).create_bucket)
    target = rt.target(agency, name)
    created = False
    if not rt.restic.repository_exists(target):
        primary = rt.target(agency) if name != agency.store else None
        if primary is not None and rt.restic.repository_exists(primary):
            # A replica shares the primary's chunker parameters so deduplication holds.
            rt.restic.init(target, copy_chunker_params_from=primary)
        else:
            rt.restic.init(target)
        created = True
        log.info("repository created", extra={"agency": agency.id, "store": name})
    return InitOutcome(agency.id, name, target.url, created, bucket_created)


@dataclass(frozen=True)
class UnlockOutcome:
    run_id: int
    agency: str
    store: str
    locks_removed: int  # as restic reports it, for local and S3 repositories alike


def unlock_repository(rt: Runtime, agency: AgencyConfig, store_name: str | None = None, *,
                      trigger: str = "cli") -> UnlockOutcome:
    """Plain `restic unlock` on one repository: stale locks (of crashed runs) go, live ones
    stay (never --remove-all, which would break a running job). Recorded as an 'unlock' run."""
    name = store_name or agency.store
    with recorded_run(rt, "unlock", agency.id, store=name, trigger=trigger) as run:
        rt.restic.require_supported()
        rt.check_store(name)
        removed = rt.restic.unlock(rt.target(agency, name))
        run.finish("success", details={"locks_removed": removed})
    log.info("%d stale lock(s) removed", removed,
             extra={"agency": agency.id, "store": name, "run_id": str(run.run_id)})
    return UnlockOutcome(run.run_id, agency.id, name, removed)
