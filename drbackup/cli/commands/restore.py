"""drbackup restore --agency A --source S [--snapshot ID|latest|--at TIME|--last-clean]
(--target DIR | --in-place --yes) [--include P] [--exclude P] [--dry-run] [--from-replica R];
drbackup restore --agency A --all-sources [--at TIME|--last-clean] [--target DIR] [--dry-run] ...;
either from a medium instead of a store: --from-media DIR [--public-key PEM] (#19 §4)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

from drbackup.cli import medium as media_option
from drbackup.cli.context import CliContext
from drbackup.cli.output import human_bytes
from drbackup.cli.progress import ProgressPrinter
from drbackup.config.models import AgencyConfig, is_identifier
from drbackup.engine import Snapshot
from drbackup.errors import DrBackupError, ExitCode, NotFoundError, TargetRefusedError, UsageError
from drbackup.jobs.restore import (
    GuardChoice,
    check_in_place,
    check_patterns,
    check_restore_target,
    choose_clean,
    parse_at,
    pick_snapshot,
    require_clean_candidates,
    restore_snapshot,
    source_snapshots,
)
from drbackup.jobs.restore_all import (
    PlannedSource,
    check_plan,
    execute_all_sources,
    plan_all_sources,
)

ROOT = Path("/")


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "restore", help="restore a source's snapshot into a directory (or in place)")
    parser.add_argument("--agency", required=True)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--source", help="the source to restore")
    which.add_argument("--all-sources", action="store_true",
                       help="restore every source of the agency (those in the config and those "
                            "its snapshots name), each whole, into TARGET/<source id>")
    parser.add_argument("--snapshot", help="snapshot id or 'latest' (the default)")
    parser.add_argument("--last-clean", action="store_true",
                        help="the ransomware guard's last clean snapshot (before the first "
                             "suspect one); with --all-sources, sources the guard does not "
                             "judge come back from before the agency's retention freeze")
    parser.add_argument("--at", metavar="TIME",
                        help='newest snapshot at or before TIME, e.g. "2026-11-20 14:00" '
                             '(local time; add "UTC", a zone name or an offset for another zone) '
                             'or "2h ago"')
    parser.add_argument("--target", type=Path,
                        help="directory to restore into (original paths are recreated below it); "
                             "default: ./drbackup-restore-AGENCY-SOURCE-SNAPSHOT")
    parser.add_argument("--in-place", action="store_true",
                        help="restore over the original paths (needs --yes)")
    parser.add_argument("--yes", action="store_true", help="confirm --in-place")
    parser.add_argument("--include", action="append", default=[], metavar="PATH",
                        help="restore only this path or pattern (repeatable)")
    parser.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                        help="leave out this path or pattern (repeatable)")
    parser.add_argument("--overwrite", action="store_true",
                        help="allow restoring into a non-empty directory")
    parser.add_argument("--dry-run", action="store_true",
                        help="show which snapshot and how much would be restored; write nothing")
    parser.add_argument("--store", help="restore from this store instead of the primary")
    parser.add_argument("--from-replica", metavar="STORE",
                        help="restore from this replica store (when the primary is gone); "
                             "the primary is not contacted")
    media_option.add_arguments(parser)
    parser.add_argument("--verify", action="store_true",
                        help="read every restored file back and compare it with the snapshot "
                             "(restic restore --verify; reads the restored data once more)")
    parser.add_argument("--limit-download", type=int, metavar="KIB_PER_S",
                        help="cap the read rate from the store (KiB/s)")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(handler=restore_now)


def _store_name(ctx: CliContext) -> str | None:
    agency = ctx.config.agency(ctx.args.agency)
    on_medium = media_option.open_if_asked(ctx, [agency])
    if on_medium is not None:
        return on_medium
    replica: str | None = ctx.args.from_replica
    if replica is None:
        return ctx.args.store  # type: ignore[no-any-return]
    if ctx.args.store and ctx.args.store != replica:
        raise UsageError("--store and --from-replica name different stores",
                         "give only --from-replica")
    if replica not in agency.replicas:
        known = ", ".join(agency.replicas) or "none"
        raise NotFoundError(f"store {replica!r} is not a replica of agency {agency.id!r}",
                            f"its replicas: {known}")
    return replica


def _target(ctx: CliContext) -> Path | None:
    """The restore target; None means the default alternate directory (named after the snapshot,
    so it is known only once the snapshot is chosen)."""
    args = ctx.args
    if args.in_place:
        if args.target is not None:
            raise UsageError("--in-place and --target exclude each other",
                             "give one of them")
        if not args.yes and not args.dry_run:
            raise TargetRefusedError("--in-place overwrites the original files",
                                     "add --yes to confirm, or restore to a --target directory")
        return ROOT
    if args.target is None:
        return None
    target: Path = args.target.absolute()
    if target == ROOT:
        raise TargetRefusedError("--target / would write over the original paths",
                                 "use --in-place --yes for that, or choose another directory")
    return target


def _note_partial(target: Path, *, in_place: bool) -> None:
    """After a failed or interrupted restore, say what is left in the target and how to finish:
    the next attempt would otherwise be refused for a non-empty target."""
    try:
        if not target.is_dir() or not any(target.iterdir()):
            return
    except OSError:
        return
    if in_place:
        advice = "run the same command again to finish it"
    else:
        advice = ("run the same command with --overwrite to finish it (restic keeps the files "
                  "already restored), or delete the directory")
    with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
        print(f"drbackup: the restore did not finish: {target} holds a partial restore; "
              f"{advice}", file=sys.stderr, flush=True)


def _check_last_clean(ctx: CliContext) -> None:
    args = ctx.args
    if args.last_clean:
        for flag, given in (("--snapshot", args.snapshot is not None), ("--at", args.at)):
            if given:
                raise UsageError(f"--last-clean and {flag} exclude each other",
                                 "give one of them")


def restore_now(ctx: CliContext) -> int:
    _check_last_clean(ctx)
    if ctx.args.all_sources:
        return _restore_all_sources(ctx)
    args = ctx.args
    agency = ctx.config.agency(args.agency)
    if not is_identifier(args.source):  # it names the default target directory
        raise UsageError(f"--source {args.source[:80]!r} is not a valid source id",
                         "use the id from the config or 'drbackup snapshots'")
    store_name = _store_name(ctx)
    chosen_target = _target(ctx)
    at = parse_at(args.at) if args.at else None
    if at is not None and args.snapshot is not None:
        raise UsageError("--at and --snapshot exclude each other", "give one of them")
    includes, overwrite = tuple(args.include), args.overwrite or args.in_place
    check_patterns(includes, "include")
    check_patterns(tuple(args.exclude), "exclude")
    if chosen_target is not None and not args.dry_run:
        # Refused before any store is contacted and before "restoring ..." is printed.
        check_restore_target(chosen_target, overwrite=overwrite)
    # With --last-clean, state says first whether there is anything to choose from.
    candidates = (require_clean_candidates(ctx.runtime, agency, args.source,
                                           store_name=store_name) if args.last_clean else None)
    snapshots = source_snapshots(ctx.runtime, agency, args.source, store_name=store_name)
    choice: GuardChoice | None = None
    if candidates is not None:
        choice = choose_clean(candidates, snapshots, store_name or agency.store)
        snapshot = choice.snapshot
    else:
        snapshot = pick_snapshot(snapshots, args.snapshot or "latest", at=at)
    target = chosen_target or (
        Path.cwd() / f"drbackup-restore-{agency.id}-{args.source}-{snapshot.short_id}")
    if chosen_target is None and not args.dry_run:
        check_restore_target(target, overwrite=overwrite)
    if args.in_place:
        check_in_place(snapshot, includes)
    summary = _restore_one(ctx, agency, args.source, snapshot, target, store_name=store_name,
                           includes=includes, excludes=tuple(args.exclude), overwrite=overwrite,
                           choice=choice)
    ctx.out.result(summary)
    return int(ExitCode.PARTIAL) if summary["errors"] else 0


def _restore_one(ctx: CliContext, agency: AgencyConfig, source_id: str, snapshot: Snapshot,
                 target: Path, *, store_name: str | None, includes: tuple[str, ...] = (),
                 excludes: tuple[str, ...] = (), overwrite: bool = False,
                 choice: GuardChoice | None = None) -> dict[str, Any]:
    """Restore one snapshot with progress and the human summary lines; returns the summary."""
    args = ctx.args
    store = store_name or agency.store
    label = f"restore {snapshot.short_id}"
    progress: ProgressPrinter | None = None
    if ctx.out.json_mode and not args.no_progress:
        progress = ProgressPrinter(sys.stdout, label, json_lines=True,
                                   extra={"snapshot_id": snapshot.id})
    elif not ctx.out.json_mode and not args.no_progress and not ctx.out.quiet:
        progress = ProgressPrinter(sys.stderr, label)
    if not ctx.out.json_mode:
        if choice is not None:
            ctx.out.line(f"{agency.id}/{source_id}: {choice.why}")
        ctx.out.line(f"{'dry run: ' if args.dry_run else ''}restoring snapshot {snapshot.id} "
                     f"({snapshot.time.astimezone():%Y-%m-%d %H:%M:%S %Z}) of "
                     f"{agency.id}/{source_id} from {media_option.where(store)} into {target}")
    try:
        outcome = restore_snapshot(
            ctx.runtime, agency, snapshot, target, includes=includes, excludes=excludes,
            overwrite=overwrite, dry_run=args.dry_run, store_name=store_name,
            on_progress=progress.update if progress else None,
            limit_download_kib=args.limit_download, verify=args.verify)
    except (DrBackupError, KeyboardInterrupt):
        if progress:
            progress.finish()
        if not args.dry_run:
            _note_partial(target, in_place=args.in_place)
        raise
    if progress:
        progress.finish()
    s = outcome.summary
    files = s.files_restored or s.total_files
    size = s.bytes_restored or s.total_bytes
    verified = bool(args.verify and not outcome.dry_run and not s.errors)
    if outcome.dry_run:
        ctx.out.line(f"would restore {files} files/dirs, {human_bytes(size)} from snapshot "
                     f"{snapshot.short_id}; nothing was written")
    else:
        kept = f", {s.files_skipped} already in place" if s.files_skipped else ""
        ctx.out.line(f"restored {files} files/dirs{kept}, {human_bytes(size)} from snapshot "
                     f"{snapshot.short_id} into {target} in {outcome.seconds:.1f}s, "
                     f"{len(s.errors)} error(s){'; content verified' if verified else ''}")
    for error in s.errors[:20]:
        ctx.out.line(f"  error: {error}")
    return {
        "event": "summary", "agency": agency.id, "source": source_id, "store": store,
        "snapshot_id": snapshot.id, "snapshot_time": snapshot.time.isoformat(),
        "target": str(target), "dry_run": outcome.dry_run, "files": files, "bytes": size,
        "files_skipped": s.files_skipped, "seconds": round(outcome.seconds, 3),
        "errors": s.errors, "verified": verified,
        "chosen_by": None if choice is None else choice.as_json(),
    }


def _restore_all_sources(ctx: CliContext) -> int:
    """Render the job's plan (refused snapshots), each source's restore and the total."""
    args = ctx.args
    for flag, given in (("--snapshot", args.snapshot is not None), ("--include", args.include),
                        ("--exclude", args.exclude), ("--in-place", args.in_place)):
        if given:
            raise UsageError(f"{flag} applies to one source, not to --all-sources",
                             "restore that source on its own with --source")
    agency = ctx.config.agency(args.agency)
    store_name = _store_name(ctx)
    base = (_target(ctx) or Path.cwd() / f"drbackup-restore-{agency.id}").absolute()
    at = parse_at(args.at) if args.at else None
    plan = plan_all_sources(ctx.runtime, agency, base=base, at=at, at_text=args.at,
                            store_name=store_name, last_clean=args.last_clean)
    for refused in plan.refused:
        ctx.out.error(f"skipped: {refused.problem}; nothing of it is restored")
    for source, why in plan.unchosen:
        ctx.out.error(f"source {source}: {why}; nothing of it is restored")
    check_plan(plan, overwrite=args.overwrite, dry_run=args.dry_run)

    def restore_one(item: PlannedSource) -> int:
        summary = _restore_one(ctx, agency, item.source, item.snapshot, item.target,
                               store_name=store_name, overwrite=args.overwrite,
                               choice=item.choice)
        ctx.out.result(summary)
        return len(summary["errors"])

    outcome = execute_all_sources(
        plan, restore_one,
        lambda item, exc: ctx.out.error(f"source {item.source}: {exc.one_line()}"))
    failed = [source for source, _ in outcome.failed]
    verb = "would restore" if args.dry_run else "restored"
    ctx.out.line(f"{verb} {len(outcome.restored)} of {plan.wanted} sources of agency "
                 f"{agency.id} into {base} in {outcome.seconds:.1f}s"
                 + (f"; failed: {', '.join(failed)}" if failed else "")
                 + (f"; no snapshot{' at that time' if at else ''}: {', '.join(plan.missing)}"
                    if plan.missing else "")
                 + (f"; skipped {len(plan.refused)} snapshot(s) with untrusted tags"
                    if plan.refused else ""))
    ctx.out.result({"event": "total", "agency": agency.id, "target": str(base),
                    "dry_run": bool(args.dry_run), "sources": plan.wanted,
                    "restored": len(outcome.restored), "failed": failed,
                    "missing": list(plan.missing),
                    "refused_snapshots": [r.snapshot_id for r in plan.refused],
                    "seconds": round(outcome.seconds, 3)})
    return outcome.exit_code
