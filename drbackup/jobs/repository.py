"""Creating an agency's repository in a store, idempotently."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from drbackup.config.models import AgencyConfig
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
