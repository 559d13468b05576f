"""Offline copies on removable media (#19) for the metrics: per agency with [agencies.offline],
the age of the newest snapshot held by a verified medium (+Inf before the first, so the alert
fires for an agency that never had one), when the last verified export ended, and the limit.
Time-dependent: rendered with the tail of every scrape, never from the cache."""

from __future__ import annotations

from drbackup.config.models import Config
from drbackup.metrics.samples import Samples
from drbackup.state import StateDB
from drbackup.state.media import last_verified_export, newest_verified_copy


def add_offline(out: Samples, config: Config, state: StateDB | None, now: float) -> None:
    """The drbackup_offline_* families. Raises StateError when state cannot be read."""
    for agency in config.agencies:
        if agency.offline is None:
            continue
        out.add("drbackup_offline_max_age_seconds", (agency.id,),
                agency.offline.max_age.total_seconds())
        if state is None:
            continue
        newest = newest_verified_copy(state, agency.id)
        out.add("drbackup_offline_copy_age_seconds", (agency.id,),
                float("inf") if newest is None else max(0.0, now - newest))
        out.add("drbackup_offline_last_verified_export_timestamp_seconds", (agency.id,),
                last_verified_export(state, agency.id))
