"""Finding snapshots of an agency's sources and restoring them; `--last-clean`: the guard's
last clean snapshot of a source (#16), or for a source the guard does not judge, the newest
snapshot before the agency's retention freeze began."""

from __future__ import annotations

import logging
import os
import stat
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from drbackup.config.models import AgencyConfig, DirectorySource
from drbackup.config.units import parse_duration
from drbackup.engine import FindHit, LsNode, RestoreSummary, Snapshot
from drbackup.engine.restic import ProgressCallback
from drbackup.errors import DrBackupError, ExitCode, NotFoundError, TargetRefusedError, UsageError
from drbackup.jobs.recording import recorded_run
from drbackup.jobs.restore_dropdump import unpack_directory_dumps
from drbackup.jobs.runtime import Runtime
from drbackup.jobs.snapshot_catalogue import repository_snapshots
from drbackup.jobs.tags import (
    agency_tag,
    contained,
    is_dump_snapshot,
    is_snapshot_id,
    source_filter,
    tag_id,
)
from drbackup.state import guard as records

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


def parse_at(text: str, *, now: datetime | None = None) -> datetime:
    """A point in time for --at: ISO-like "2026-11-20 14:00[:ss]" in local time, with an optional
    zone: an offset ("+08:00", "Z") or a trailing zone name ("UTC", "Asia/Shanghai"); or a
    time before `now` (default: the current time): a duration ("2h", "1d12h") or the same
    followed by "ago" ("2h ago").

    Raises DrBackupError (usage) when it cannot be read.
    """
    raw = " ".join(text.split())
    relative = raw[:-4] if raw.lower().endswith(" ago") else raw
    if relative[:1].isdigit() and relative[-1:].isalpha():  # "2h", "90m ago"; never a date
        try:
            back = parse_duration(relative)
        except ValueError:
            pass
        else:
            return (now or datetime.now(UTC)) - back
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
                         'write it like "2026-11-20 14:00" (local time), '
                         '"2026-11-20 14:00 UTC" or "2h ago"') from None
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
            unpack_directory_dumps(snapshot, target_dir)  # a pg_dump -Fd comes back as one
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


# -- the ransomware guard's verdicts and --last-clean (#16) ----------------------------------

LAST_CLEAN, BEFORE_FREEZE, LATEST = "last-clean", "before-freeze", "latest"
_VERDICT_LIMIT = 100_000


def _when(moment: datetime, *, seconds: bool = False) -> str:
    return f"{moment.astimezone():%Y-%m-%d %H:%M{':%S' if seconds else ''}}"


def judged_id(snapshot: Snapshot) -> str | None:
    """The id the guard judged a snapshot under: its own, or for a copy in a replica (or a
    snapshot rewritten by `restic tag`) the one it names as `original`. None when either is not
    64 hex digits: read back from a store, such an id is never looked up (verdicts are found by
    prefix, so a short or empty one would name another snapshot's verdict)."""
    ident = snapshot.original or snapshot.id
    return ident if is_snapshot_id(snapshot.id) and is_snapshot_id(ident) else None


def guard_verdict(rt: Runtime, agency_id: str, snapshot: Snapshot
                  ) -> records.VerdictRecord | None:
    """The guard's verdict on a snapshot read from a store; None when it was never assessed on
    this host (or its id is not one)."""
    ident = judged_id(snapshot)
    if ident is None:
        return None
    found = records.verdict_for(rt.state, agency_id, ident)
    return found if found is not None and found.snapshot_id == ident else None


@dataclass(frozen=True)
class GuardChoice:
    """The snapshot --last-clean chose for a source, the rule that chose it and why (one
    line, e.g. "last clean snapshot 1a2b3c4d of 2026-12-07 01:00, before suspect 5e6f7a8b")."""

    snapshot: Snapshot
    rule: str  # LAST_CLEAN | BEFORE_FREEZE | LATEST
    why: str

    def as_json(self) -> dict[str, str]:
        return {"rule": self.rule, "why": self.why}


@dataclass(frozen=True)
class CleanCandidates:
    """What state says of a source for --last-clean: its clean snapshots, newest first (all
    before its first suspect one since the open freeze began), and all its verdicts."""

    source: str
    clean: tuple[records.VerdictRecord, ...]
    assessed: tuple[records.VerdictRecord, ...]


def clean_candidates(rt: Runtime, agency: AgencyConfig, source_id: str
                     ) -> CleanCandidates | None:
    """From state only, before any store is contacted. None when the source has no verdict at
    all; raises NotFoundError when it has verdicts but no clean one to take."""
    state = rt.state
    assessed = tuple(records.verdicts(state, agency.id, source_id, limit=_VERDICT_LIMIT))
    if not assessed:
        return None
    newest = records.last_clean(state, agency.id, source_id)
    if newest is None:
        freeze = records.open_freeze(state, agency.id)
        mine = [v for v in records.suspects_in_freeze(state, freeze)
                if v.source == source_id] if freeze else []
        first = min(mine or [v for v in assessed if v.suspect], key=lambda v: v.id)
        why = f" ({first.reasons[0]})" if first.reasons else ""
        raise NotFoundError(
            f"--last-clean: source {source_id!r} of agency {agency.id!r} has no clean snapshot "
            f"before its suspect snapshot {first.snapshot_id[:8]}{why}",
            f"none of its {len(assessed)} assessed snapshot(s) up to then is clean; choose one "
            f"yourself and check its content: --snapshot ID or --at TIME ('drbackup snapshots "
            f"--agency {agency.id} --source {source_id}' lists them, with the guard's marks)")
    clean = tuple(v for v in assessed if v.id <= newest.id and not v.suspect)
    return CleanCandidates(source_id, clean, assessed)


def no_verdict_error(rt: Runtime, agency: AgencyConfig, source_id: str, store: str
                     ) -> NotFoundError:
    """--last-clean for a source with no verdict on this host: the cause and the way on."""
    source = next((s for s in agency.sources if s.id == source_id), None)
    if source is None:
        cause = "it is not in this host's config, so the ransomware guard never judged it here"
    elif not isinstance(source, DirectorySource):
        cause = (f"it is a {source.kind} source, and the ransomware guard judges directory "
                 "sources only")
    elif not agency.guard.enabled:
        cause = "the ransomware guard is disabled for the agency ([agencies.guard] enabled)"
    else:
        cause = ("this host's state holds no guard verdict for it (a fresh host, or no backup "
                 "of it since the guard was enabled)")
    where = f"'drbackup snapshots --agency {agency.id} --source {source_id}'"
    if source is None or isinstance(source, DirectorySource):
        where = (f"the signed guard verdict reports in store {store!r} under "
                 f"{agency.id}/reports/*-guard-{source_id}-*.json, or from {where}")
    freeze = records.open_freeze(rt.state, agency.id)
    since = (f"; the agency's retention is frozen since "
             f"{_when(_moment(freeze.since), seconds=True)}: take one from before then"
             if freeze else "")
    return NotFoundError(
        f"--last-clean: no guard verdict for source {source_id!r} of agency {agency.id!r}: "
        f"{cause}", f"pass --snapshot ID taken from {where}{since}")


def require_clean_candidates(rt: Runtime, agency: AgencyConfig, source_id: str, *,
                             store_name: str | None = None) -> CleanCandidates:
    """clean_candidates, or the no-verdict NotFoundError."""
    found = clean_candidates(rt, agency, source_id)
    if found is None:
        raise no_verdict_error(rt, agency, source_id, store_name or agency.store)
    return found


def _moment(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def choose_clean(candidates: CleanCandidates, snapshots: list[Snapshot], store: str
                 ) -> GuardChoice:
    """The newest clean candidate found among the store's snapshots (a replica holds copies,
    which name it as `original`).

    Raises NotFoundError when none is there, TargetRefusedError when several snapshots claim
    to be the same one (only one can be: someone wrote the others)."""
    found: dict[str, list[Snapshot]] = {}
    for snapshot in snapshots:
        ident = judged_id(snapshot)
        if ident is not None:
            found.setdefault(ident, []).append(snapshot)
    absent: list[str] = []
    for record in candidates.clean:
        copies = found.get(record.snapshot_id, [])
        if not copies:
            absent.append(record.snapshot_id[:8])
            continue
        if len(copies) > 1:
            raise TargetRefusedError(
                f"{len(copies)} snapshots in store {store!r} claim to be clean snapshot "
                f"{record.snapshot_id[:8]} ({', '.join(s.short_id for s in copies)})",
                "only one can be it: check who wrote to the store, then restore by --snapshot ID")
        snapshot = copies[0]
        why = f"last clean snapshot {record.snapshot_id[:8]} of {_when(snapshot.time)}"
        if snapshot.id != record.snapshot_id:
            why += f" (its copy {snapshot.short_id} in store {store!r})"
        later = [v for v in candidates.assessed if v.id > record.id and v.suspect]
        if later:
            why += f", before suspect {min(later, key=lambda v: v.id).snapshot_id[:8]}"
        else:
            judged = {v.snapshot_id for v in candidates.assessed}
            newer = [s for s in snapshots if s.time > snapshot.time and judged_id(s) not in judged]
            why += ", the newest assessed" + (
                f" ({len(newer)} newer snapshot(s) never assessed)" if newer else "")
        if absent:
            why += f"; newer clean {', '.join(absent)} not in store {store!r}"
        return GuardChoice(snapshot, LAST_CLEAN, why)
    raise NotFoundError(
        f"--last-clean: none of the {len(candidates.clean)} clean snapshot(s) of source "
        f"{candidates.source!r} is in store {store!r} (forgotten since, or not copied there)",
        f"list the store's snapshots with 'drbackup snapshots --source {candidates.source} "
        f"--store {store}' and restore one by --snapshot ID after checking it")
