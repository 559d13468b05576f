"""Each repository's snapshot list, cached in the state database and used only while the
repository still holds exactly the cached snapshots.

Every restic command that opens a repository pays restic's key derivation (scrypt, calibrated at
`init` to about half a second of CPU), so `restore` resolving "latest" with `restic snapshots`
before `restic restore` opened the repository twice. A snapshot file never changes and is named
by the hash of its content: when the names under the repository's `snapshots/` folder equal the
cached ids, the cached list *is* the repository's list. Listing those names needs neither the
password nor restic (a directory listing, or one S3 ListObjectsV2); anything else (a new backup,
a forget from another host, a listing that fails) sends the caller to `restic snapshots`, whose
answer replaces the cache.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence

from drbackup.config.models import AgencyConfig
from drbackup.engine import RepoTarget, Snapshot
from drbackup.engine.errors import ResticError
from drbackup.errors import StateError
from drbackup.jobs.runtime import Runtime
from drbackup.store import S3Location, StoreError

log = logging.getLogger(__name__)

KEY_PREFIX = "snapshot-catalogue:"
_SNAPSHOT_NAME = re.compile(r"[0-9a-f]{64}")


def repository_snapshots(rt: Runtime, agency: AgencyConfig, store_name: str, *,
                         tags: Sequence[str] = (), fresh: bool = False) -> list[Snapshot]:
    """The snapshots in the agency's repository in `store_name` that have all `tags` (restic's
    `--tag a,b`), oldest first.

    `fresh` asks restic in any case (and refreshes the cache): for callers that must prove the
    repository opens with the configured password, like `drbackup snapshots`. Callers that run
    restic on the repository next (restore, ls, dump, drills) get that proof from restic
    itself."""
    target = rt.target(agency, store_name)
    if rt.medium is not None:  # never cached: another medium may be mounted there next time
        read = rt.restic.snapshots(target)
        rt.medium.check_snapshot_ids(agency.id, ((s.id, s.original) for s in read))
        return _tagged(read, tags)
    names = None if fresh else snapshot_names(rt, agency, store_name)
    if names is not None:
        cached = _load(rt, target)
        if cached is not None and {snapshot.id for snapshot in cached} == names:
            return _tagged(cached, tags)
    snapshots = rt.restic.snapshots(target)
    _save(rt, target, snapshots)
    return _tagged(snapshots, tags)


def _tagged(snapshots: list[Snapshot], tags: Sequence[str]) -> list[Snapshot]:
    return [snapshot for snapshot in snapshots if all(tag in snapshot.tags for tag in tags)]


def snapshot_names(rt: Runtime, agency: AgencyConfig, store_name: str) -> set[str] | None:
    """The snapshot ids the repository holds, read from its file names without restic; None when
    they cannot be listed (the caller then asks restic)."""
    store = rt.store_config(store_name)
    if store.path is not None:
        folder = store.path / agency.id / "snapshots"
        try:
            with os.scandir(folder) as entries:
                return {entry.name for entry in entries if _SNAPSHOT_NAME.fullmatch(entry.name)}
        except OSError:
            return None
    s3 = rt.s3_store(store_name)
    if s3 is None or store.url is None:
        return None
    prefix = S3Location.parse(store.url).child(agency.id).prefix
    try:
        keys = s3.list_keys(f"{prefix}/snapshots/")
    except StoreError as exc:
        log.debug("snapshot names not listed, asking restic: %s", exc.one_line())
        return None
    return {name for key in keys if _SNAPSHOT_NAME.fullmatch(name := key.rsplit("/", 1)[-1])}


def _key(target: RepoTarget) -> str:
    return KEY_PREFIX + target.url


def _load(rt: Runtime, target: RepoTarget) -> list[Snapshot] | None:
    raw = rt.state.get_value(_key(target))
    if raw is None:
        return None
    try:
        records = json.loads(raw)
        if not isinstance(records, list):
            return None
        return sorted((Snapshot.from_json(record) for record in records), key=lambda s: s.time)
    except (ValueError, ResticError):
        return None  # an unreadable cache is no cache


def _save(rt: Runtime, target: RepoTarget, snapshots: list[Snapshot]) -> None:
    records = json.dumps([snapshot.to_json() for snapshot in snapshots], separators=(",", ":"))
    try:
        rt.state.set_value(_key(target), records)
    except StateError as exc:  # a cache not written costs the next caller one restic call
        log.warning("snapshot list not cached: %s", exc.one_line())
