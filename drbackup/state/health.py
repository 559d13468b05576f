"""Store health as seen by the last reachability check of each store, kept in the kv table so
metrics (drbackup_store_up, drbackup_store_latency_seconds) survive restarts and a scrape never
has to reach S3 itself."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

from drbackup.errors import StateError
from drbackup.state.db import StateDB

log = logging.getLogger(__name__)
# Shared with the store-health and replication jobs: `store_health:<store>` and
# `replication:<agency>:<replica>` (JSON objects).
PREFIX = "store_health:"
REPLICATION_PREFIX = "replication:"


@dataclass(frozen=True)
class StoreHealthRecord:
    store: str
    up: bool
    checked_at: float
    latency_seconds: float | None = None
    error: str | None = None


def record_store_health(state: StateDB, store: str, *, up: bool,
                        latency_seconds: float | None = None, error: str | None = None,
                        checked_at: float | None = None, kind: str = "s3",
                        exit_code: int | None = None) -> None:
    """Remember the outcome of a store check. A state problem is logged, never raised: a
    monitoring record must not fail the job that made the check."""
    value = {"store": store, "kind": kind, "up": up, "checked_at": checked_at or time.time(),
             "latency_seconds": latency_seconds, "error": error, "exit_code": exit_code}
    try:
        state.set_value(PREFIX + store, json.dumps(value, sort_keys=True))
    except StateError as exc:
        log.warning("could not record the health of store %s: %s", store, exc.one_line())


def store_health(state: StateDB) -> dict[str, StoreHealthRecord]:
    """The last recorded health of every store that has one, by store name."""
    found: dict[str, StoreHealthRecord] = {}
    for key, raw in state.values_with_prefix(PREFIX).items():
        name = key[len(PREFIX):]
        try:
            data = json.loads(raw)
            latency = data.get("latency_seconds")
            found[name] = StoreHealthRecord(
                store=name, up=bool(data["up"]), checked_at=float(data["checked_at"]),
                latency_seconds=None if latency is None else float(latency),
                error=data.get("error"))
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("ignoring an unreadable health record of store %s", name)
    return found


def replication_status(state: StateDB) -> dict[tuple[str, str], dict[str, object]]:
    """The replication job's last measurement per (agency, replica): measured_at,
    oldest_uncopied_time (None when the replica lacked nothing), ..."""
    found: dict[tuple[str, str], dict[str, object]] = {}
    for key, raw in state.values_with_prefix(REPLICATION_PREFIX).items():
        agency, _, replica = key[len(REPLICATION_PREFIX):].partition(":")
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        if isinstance(data, dict) and agency and replica:
            found[(agency, replica)] = data
    return found
