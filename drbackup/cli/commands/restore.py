"""drbackup restore --agency A --source S [--snapshot ID|latest] --target DIR"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from drbackup.cli.context import CliContext
from drbackup.cli.output import human_bytes
from drbackup.cli.progress import ProgressPrinter
from drbackup.jobs.restore import list_snapshots, pick_snapshot, restore_snapshot


def register(commands: Any) -> None:
    parser = commands.add_parser("restore", help="restore a source's snapshot into a directory")
    parser.add_argument("--agency", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--snapshot", default="latest", help="snapshot id or 'latest'")
    parser.add_argument("--target", required=True, type=Path, help="directory to restore into")
    parser.add_argument("--include", action="append", default=[], metavar="PATH",
                        help="restore only this path (repeatable)")
    parser.add_argument("--exclude", action="append", default=[], metavar="PATTERN")
    parser.add_argument("--overwrite", action="store_true",
                        help="allow restoring into a non-empty directory")
    parser.add_argument("--dry-run", action="store_true", help="show what would be restored")
    parser.add_argument("--store", help="restore from this store (e.g. a replica)")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(handler=restore_now)


def restore_now(ctx: CliContext) -> int:
    agency = ctx.config.agency(ctx.args.agency)
    agency.source(ctx.args.source)  # an unknown source is an error before any network call
    snapshots = list_snapshots(ctx.runtime, agency, ctx.args.source, store_name=ctx.args.store)
    snapshot = pick_snapshot(snapshots, ctx.args.snapshot)
    target = ctx.args.target.absolute()
    progress = None if ctx.args.no_progress or ctx.out.json_mode else ProgressPrinter(
        sys.stderr, f"restore {snapshot.short_id}")
    outcome = restore_snapshot(
        ctx.runtime, agency, snapshot, target, includes=tuple(ctx.args.include),
        excludes=tuple(ctx.args.exclude), overwrite=ctx.args.overwrite,
        dry_run=ctx.args.dry_run, store_name=ctx.args.store,
        on_progress=progress.update if progress else None)
    if progress:
        progress.finish()
    s = outcome.summary
    verb = "would restore" if outcome.dry_run else "restored"
    ctx.out.line(f"{verb} snapshot {snapshot.short_id} ({snapshot.time:%Y-%m-%d %H:%M:%S %Z}) "
                 f"into {target}: {s.files_restored or s.total_files} files, "
                 f"{human_bytes(s.bytes_restored or s.total_bytes)} in {outcome.seconds:.1f}s")
    for error in s.errors[:20]:
        ctx.out.line(f"  error: {error}")
    ctx.out.result(outcome)
    return 3 if s.errors else 0
