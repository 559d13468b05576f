"""Finding snapshots of an agency's sources and restoring them."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from drbackup.config.models import AgencyConfig
from drbackup.engine import RestoreSummary, Snapshot
from drbackup.engine.restic import ProgressCallback
from drbackup.errors import DrBackupError, NotFoundError, TargetRefusedError
from drbackup.jobs.runtime import Runtime
from drbackup.jobs.tags import source_filter

log = logging.getLogger(__name__)


def list_snapshots(rt: Runtime, agency: AgencyConfig, source_id: str | None = None, *,
                   store_name: str | None = None) -> list[Snapshot]:
    """The agency's snapshots (of one source, when given), oldest first."""
    rt.restic.require_supported()
    name = store_name or agency.store
    rt.check_store(name)
    return rt.restic.snapshots(rt.target(agency, name), tags=source_filter(agency.id, source_id))


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
        eligible = [s for s in ordered if s.time <= at]
        if not eligible:
            raise NotFoundError(f"no snapshot at or before {at.isoformat()}",
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
                                 "choose an empty directory, or pass --overwrite")


def check_restore_patterns(includes: tuple[str, ...], excludes: tuple[str, ...]) -> None:
    """Paths to restore name places inside the snapshot: a '..' component (which could only
    mean "outside the target") or a NUL byte is refused before restic runs."""
    for flag, patterns in (("--include", includes), ("--exclude", excludes)):
        for pattern in patterns:
            if "\0" in pattern:
                raise TargetRefusedError(f"{flag} {pattern!r} holds a NUL byte",
                                         "give a path as it appears in the snapshot")
            if ".." in pattern.replace("\\", "/").split("/"):
                raise TargetRefusedError(
                    f"{flag} {pattern!r} climbs out with '..': a restore never writes outside "
                    "its target", "give the path as it appears in the snapshot, e.g. "
                    "/srv/planning/documents")


def restore_snapshot(rt: Runtime, agency: AgencyConfig, snapshot: Snapshot, target_dir: Path, *,
                     includes: tuple[str, ...] = (), excludes: tuple[str, ...] = (),
                     overwrite: bool = False, dry_run: bool = False,
                     store_name: str | None = None, trigger: str = "cli",
                     on_progress: ProgressCallback | None = None) -> RestoreOutcome:
    """Restore a snapshot under target_dir (restic keeps the original absolute paths below it).

    Raises TargetRefusedError for a non-empty target without overwrite, and engine errors.
    """
    check_restore_patterns(includes, excludes)
    if not dry_run:
        check_restore_target(target_dir, overwrite=overwrite)
    name = store_name or agency.store
    source_id = snapshot.tag("source")
    run_id = rt.state.start_run("restore", agency.id, source=source_id, store=name,
                                trigger=trigger)
    started = time.monotonic()
    try:
        summary = rt.restic.restore(rt.target(agency, name), snapshot.id, target_dir,
                                    includes=includes, excludes=excludes, dry_run=dry_run,
                                    on_progress=on_progress)
    except DrBackupError as exc:
        rt.state.finish_run(run_id, "failed", error=exc.one_line())
        raise
    except BaseException as exc:
        rt.state.finish_run(run_id, "interrupted", error=exc.__class__.__name__)
        raise
    seconds = time.monotonic() - started
    rt.state.finish_run(run_id, "warning" if summary.errors else "success",
                        error="; ".join(summary.errors[:5]) or None,
                        details={"snapshot_id": snapshot.id, "target": str(target_dir),
                                 "bytes": summary.bytes_restored, "seconds": seconds,
                                 "dry_run": dry_run})
    log.info("restore finished", extra={"agency": agency.id, "source": source_id,
                                        "job": "restore", "run_id": str(run_id)})
    return RestoreOutcome(snapshot, target_dir, summary, seconds, dry_run)
