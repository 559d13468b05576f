"""Finding snapshots of an agency's sources and restoring them."""

from __future__ import annotations

import logging
import os
import stat
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from drbackup.config.models import AgencyConfig
from drbackup.engine import FindHit, LsNode, RestoreSummary, Snapshot
from drbackup.engine.restic import ProgressCallback
from drbackup.errors import DrBackupError, ExitCode, NotFoundError, TargetRefusedError, UsageError
from drbackup.jobs.recording import recorded_run
from drbackup.jobs.runtime import Runtime
from drbackup.jobs.snapshot_catalogue import repository_snapshots
from drbackup.jobs.tags import agency_tag, contained, is_dump_snapshot, source_filter, tag_id

log = logging.getLogger(__name__)


# The primary store failing in these ways is what replicas are for.
_STORE_GONE = {ExitCode.STORE_UNREACHABLE, ExitCode.STORE_CREDENTIALS, ExitCode.STORE_ACCESS,
               ExitCode.REPO_MISSING}


def suggest_replica(exc: DrBackupError, agency: AgencyConfig, store_name: str | None) -> None:
    """When the primary store is gone (down, bucket deleted, access refused, repository
    missing) and the agency has replicas, the error's hint names the way out."""
    if (store_name in (None, agency.store) and agency.replicas
            and exc.exit_code in _STORE_GONE and "--from-replica" not in exc.hint):
        choice = " or ".join(f"--from-replica {r}" for r in agency.replicas)
        exc.hint = (f"{exc.hint}; or restore from a replica: {choice}" if exc.hint
                    else f"restore from a replica: {choice}")


def list_snapshots(rt: Runtime, agency: AgencyConfig, source_id: str | None = None, *,
                   store_name: str | None = None, fresh: bool = False) -> list[Snapshot]:
    """The agency's snapshots (of one source, when given), oldest first; `fresh` always asks
    restic (see snapshot_catalogue.repository_snapshots)."""
    rt.restic.require_supported()
    name = store_name or agency.store
    try:
        rt.check_store(name)
        return repository_snapshots(rt, agency, name, tags=source_filter(agency.id, source_id),
                                    fresh=fresh)
    except DrBackupError as exc:
        suggest_replica(exc, agency, store_name)
        raise


def source_snapshots(rt: Runtime, agency: AgencyConfig, source_id: str, *,
                     store_name: str | None = None) -> list[Snapshot]:
    """The snapshots of one source, oldest first. A source that is not in the config is still
    found by its snapshots' tag: a database source on a host opened from a recovery kit (whose
    config carries directory sources only), or a source removed from the config since.

    Raises NotFoundError when the config does not know the source and no snapshot carries it."""
    snapshots = list_snapshots(rt, agency, source_id, store_name=store_name)
    if not snapshots and all(s.id != source_id for s in agency.sources):
        known = ", ".join(s.id for s in agency.sources) or "none"
        raise NotFoundError(
            f"agency {agency.id!r} has no source {source_id!r}: not in the config and no "
            f"snapshot in store {store_name or agency.store!r} carries it",
            f"sources in the config: {known}; 'drbackup snapshots --agency {agency.id}' lists "
            "every source that has snapshots")
    return snapshots


def parse_at(text: str) -> datetime:
    """A point in time for --at: ISO-like "2026-11-20 14:00[:ss]" in local time, with an optional
    zone: an offset ("+08:00", "Z") or a trailing zone name ("UTC", "Asia/Shanghai").

    Raises DrBackupError (usage) when it cannot be read.
    """
    raw = " ".join(text.split())
    zone: ZoneInfo | None = None
    head, _, tail = raw.rpartition(" ")
    if head and tail and (tail == "UTC" or "/" in tail):
        try:
            zone = ZoneInfo(tail)
        except (ZoneInfoNotFoundError, ValueError):
            raise UsageError(f"--at {text!r}: unknown time zone {tail!r}",
                             "use an IANA name such as Asia/Shanghai, or UTC, or an offset"
                             ) from None
        raw = head
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--at {text!r} is not a date and time",
                         'write it like "2026-11-20 14:00" (local time) or '
                         '"2026-11-20 14:00 UTC"') from None
    if value.tzinfo is not None:
        if zone is not None:
            raise UsageError(f"--at {text!r} gives both an offset and a zone name",
                             "give one of them")
        return value
    if zone is not None:
        return value.replace(tzinfo=zone)
    return value.astimezone()  # naive: this host's local time


def pick_snapshot(snapshots: list[Snapshot], ref: str = "latest", *,
                  at: datetime | None = None) -> Snapshot:
    """Choose by id (or unique id prefix), "latest", or the newest at or before `at`.

    Raises NotFoundError when nothing matches or a prefix is ambiguous.
    """
    if not snapshots:
        raise NotFoundError("there are no snapshots to restore from",
                            "check the agency and source, or run a backup first")
    ordered = sorted(snapshots, key=lambda s: s.time)
    if at is not None:
        moment = at if at.tzinfo is not None else at.astimezone()
        eligible = [s for s in ordered if s.time <= moment]
        if not eligible:
            raise NotFoundError(f"no snapshot at or before {moment.isoformat()}",
                                f"the oldest is from {ordered[0].time.isoformat()}")
        return eligible[-1]
    if ref == "latest":
        return ordered[-1]
    matches = [s for s in ordered if s.id.startswith(ref.lower())]
    if not matches:
        raise NotFoundError(f"no snapshot {ref!r} for this agency and source",
                            "list them with 'drbackup snapshots'")
    if len(matches) > 1:
        raise NotFoundError(f"snapshot id {ref!r} is ambiguous", "give more characters")
    return matches[0]


@dataclass(frozen=True)
class RestoreOutcome:
    snapshot: Snapshot
    target_dir: Path
    summary: RestoreSummary
    seconds: float
    dry_run: bool


def check_restore_target(target_dir: Path, *, overwrite: bool) -> None:
    """A restore never mixes files into a non-empty directory unless asked to."""
    if target_dir.exists() and not target_dir.is_dir():
        raise TargetRefusedError(f"restore target {target_dir} exists and is not a directory",
                                 "choose a directory path")
    if target_dir.is_dir() and any(target_dir.iterdir()) and not overwrite:
        raise TargetRefusedError(f"restore target {target_dir} is not empty",
                                 "choose an empty directory, or pass --overwrite "
                                 "(or --in-place --yes to write over the original paths)")


def check_patterns(patterns: tuple[str, ...], what: str) -> None:
    """Include/exclude patterns name paths inside the snapshot; '..' would point outside."""
    for pattern in patterns:
        if ".." in PurePosixPath(pattern).parts:
            raise TargetRefusedError(f"{what} {pattern!r} contains '..'",
                                     "name paths as they appear in the snapshot (drbackup ls)")


def check_in_place(snapshot: Snapshot, includes: tuple[str, ...]) -> None:
    """An in-place restore writes over the original paths: every include must lie inside one of
    the paths the snapshot was taken of, so nothing outside them can be touched."""
    if is_dump_snapshot(snapshot):
        raise TargetRefusedError(
            f"snapshot {snapshot.short_id} holds a dump, not the host's paths: --in-place would "
            "write it at the filesystem root", "restore it to a --target directory, or into a "
            "database with 'drbackup restore-db'")
    roots = [PurePosixPath(p) for p in snapshot.paths]
    for pattern in includes:
        path = PurePosixPath(pattern)
        if not path.is_absolute() or not any(path == r or r in path.parents for r in roots):
            raise TargetRefusedError(
                f"in-place include {pattern!r} is outside the snapshot's paths "
                f"({', '.join(snapshot.paths)})",
                "give absolute paths inside them, or restore to a separate --target")


def _private_dump_files(snapshot: Snapshot, target_dir: Path) -> None:
    """restic restores a stdin snapshot's file with mode 0644: a database dump is as secret as
    the database, so it is made 0600 like the rest of what drbackup writes. Links are never
    followed (a dump snapshot holds none; one found there is left alone)."""
    for path in snapshot.paths:
        name = PurePosixPath(path).name
        if not name or PurePosixPath(path).parent != PurePosixPath("/"):
            continue
        try:
            fd = os.open(contained(target_dir, name), os.O_RDONLY | os.O_NOFOLLOW)
        except (TargetRefusedError, OSError):
            continue
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                os.fchmod(fd, 0o600)
        finally:
            os.close(fd)


def restore_snapshot(rt: Runtime, agency: AgencyConfig, snapshot: Snapshot, target_dir: Path, *,
                     includes: tuple[str, ...] = (), excludes: tuple[str, ...] = (),
                     overwrite: bool = False, dry_run: bool = False,
                     store_name: str | None = None, trigger: str = "cli",
                     on_progress: ProgressCallback | None = None,
                     limit_download_kib: int | None = None,
                     verify: bool = False) -> RestoreOutcome:
    """Restore a snapshot under target_dir (restic keeps the original absolute paths below it);
    `verify` has restic read every restored file back and compare it with the snapshot.

    Raises TargetRefusedError for a non-empty target without overwrite, and engine errors.
    """
    check_patterns(includes, "include")
    check_patterns(excludes, "exclude")
    if not dry_run:
        check_restore_target(target_dir, overwrite=overwrite)
    name = store_name or agency.store
    source_id = tag_id(snapshot, "source")
    with recorded_run(rt, "restore", agency.id, source=source_id, store=name, trigger=trigger,
                      on_failure=lambda _outcome, exc: suggest_replica(exc, agency, store_name)
                      ) as run:
        run_id = run.run_id
        started = time.monotonic()
        summary = rt.restic.restore(rt.target(agency, name), snapshot.id, target_dir,
                                    includes=includes, excludes=excludes, dry_run=dry_run,
                                    on_progress=on_progress,
                                    limit_download_kib=limit_download_kib,
                                    verify=verify and not dry_run)
        seconds = time.monotonic() - started
        if not dry_run and is_dump_snapshot(snapshot):
            _private_dump_files(snapshot, target_dir)
        run.finish("warning" if summary.errors else "success",
                   error="; ".join(summary.errors[:5]) or None,
                   details={"snapshot_id": snapshot.id, "target": str(target_dir),
                                     "bytes": summary.bytes_restored, "seconds": seconds,
                                     "dry_run": dry_run, "verified": verify and not dry_run})
    log.info("restore finished", extra={"agency": agency.id, "source": source_id,
                                        "job": "restore", "run_id": str(run_id)})
    return RestoreOutcome(snapshot, target_dir, summary, seconds, dry_run)


def list_files(rt: Runtime, agency: AgencyConfig, snapshot: Snapshot, paths: tuple[str, ...] = (),
               *, store_name: str | None = None) -> list[LsNode]:
    """The entries of a snapshot (below `paths`, when given)."""
    return rt.restic.ls(rt.target(agency, store_name or agency.store), snapshot.id, paths)


def find_files(rt: Runtime, agency: AgencyConfig, patterns: tuple[str, ...], *,
               source_id: str | None = None, store_name: str | None = None,
               ignore_case: bool = False) -> list[FindHit]:
    """Every path matching a pattern in any of the agency's snapshots (of one source)."""
    rt.restic.require_supported()
    name = store_name or agency.store
    rt.check_store(name)
    tags = source_filter(agency.id, source_id) if source_id else [agency_tag(agency.id)]
    return rt.restic.find(rt.target(agency, name), patterns, tags=tags, ignore_case=ignore_case)
