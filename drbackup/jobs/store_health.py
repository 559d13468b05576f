"""Store health: can each store be reached, and how fast. Each check is recorded in the state
database (kv key `store_health:<store>`) so metrics can export drbackup_store_up and
drbackup_store_latency_seconds after a restart, and the daemon can back jobs off while a store
is down."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from drbackup.config.models import AgencyConfig
from drbackup.errors import DrBackupError, ExitCode
from drbackup.jobs.backoff import STORE_BACKOFFS
from drbackup.jobs.runtime import Runtime
from drbackup.state import StateDB

log = logging.getLogger(__name__)
HEALTH_KEY = "store_health:{store}"


@dataclass(frozen=True)
class StoreHealthRecord:
    store: str
    kind: str  # "s3" or "local"
    up: bool
    latency_seconds: float | None
    checked_at: float
    error: str | None = None
    exit_code: int | None = None  # the DrBackupError's exit code when down


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_store_health(rt: Runtime, store_name: str) -> StoreHealthRecord:
    """Reach the store (S3: list the bucket with the daily key; local: the directory is
    writable), time it, and record the result in state. Never raises for an unreachable store:
    that is the result."""
    config = rt.store_config(store_name)
    started = time.monotonic()
    checked_at = time.time()
    error: str | None = None
    code: int | None = None
    if config.path is not None:
        kind = "local"
        existing = _nearest_existing(config.path)
        up = existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)
        if not up:
            error = f"{config.path} is not a writable directory"
    else:
        kind = "s3"
        try:
            rt.check_store(store_name)
            up = True
        except DrBackupError as exc:
            up = False
            error = exc.one_line()
            code = int(exc.exit_code)
    latency = time.monotonic() - started
    record = StoreHealthRecord(store_name, kind, up, latency if up else None, checked_at,
                               error, code)
    rt.state.set_value(HEALTH_KEY.format(store=store_name), json.dumps(asdict(record)))
    if up:
        log.debug("store %s up (%.3fs)", store_name, latency, extra={"store": store_name})
    else:
        log.warning("store %s down: %s", store_name, error, extra={"store": store_name})
    return record


def check_all_stores(rt: Runtime) -> list[StoreHealthRecord]:
    """Every store named in the config or used by an agency (the implicit local one too)."""
    names = set(rt.config.stores)
    for agency in rt.config.agencies:
        names.update([agency.store, *agency.replicas])
    return [check_store_health(rt, name) for name in sorted(names)]


def last_store_health(state: StateDB, store_name: str) -> StoreHealthRecord | None:
    """The last recorded check of a store, or None when it was never checked."""
    raw = state.get_value(HEALTH_KEY.format(store=store_name))
    if raw is None:
        return None
    try:
        return StoreHealthRecord(**json.loads(raw))
    except (TypeError, ValueError):
        return None


def store_health_job(rt: Runtime, agency: AgencyConfig, store: str, trigger: str
                     ) -> StoreHealthRecord:
    """The daemon's job-function form: check one store and record it; raises a DrBackupError
    (with the store error's exit code) when it is down, so the daemon's back-off applies."""
    del agency, trigger  # the check is per store
    record = check_store_health(rt, store)
    if record.exit_code == ExitCode.STORE_UNREACHABLE:
        STORE_BACKOFFS.failure(store, time.time(), record.error)
    else:
        # The store answers (even if with an error): jobs on it stop backing off.
        STORE_BACKOFFS.success(store)
    if not record.up:
        raise DrBackupError(record.error or f"store {store!r} is down",
                            "jobs on this store back off until it returns",
                            exit_code=ExitCode(record.exit_code or ExitCode.STORE_UNREACHABLE))
    return record
