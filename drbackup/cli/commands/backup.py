"""drbackup backup --agency A [--source S]"""

from __future__ import annotations

import sys
from typing import Any

from drbackup.cli.context import CliContext
from drbackup.cli.output import human_bytes
from drbackup.cli.progress import ProgressPrinter
from drbackup.errors import ExitCode
from drbackup.jobs.backup import run_backup


def register(commands: Any) -> None:
    parser = commands.add_parser("backup", help="back up now (one-shot)")
    parser.add_argument("--agency", required=True)
    parser.add_argument("--source", help="only this source (default: all of the agency's)")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(handler=backup_now)


def backup_now(ctx: CliContext) -> int:
    agency = ctx.config.agency(ctx.args.agency)
    sources = [agency.source(ctx.args.source)] if ctx.args.source else list(agency.sources)
    if not sources:
        ctx.out.line(f"agency {agency.id} has no sources")
        return 0
    code = 0
    outcomes = []
    for source in sources:
        progress = None if ctx.args.no_progress or ctx.out.json_mode else ProgressPrinter(
            sys.stderr, f"{agency.id}/{source.id}")
        outcome = run_backup(ctx.runtime, agency, source,
                             on_progress=progress.update if progress else None)
        if progress:
            progress.finish()
        outcomes.append(outcome)
        s = outcome.summary
        if outcome.result == "skipped":
            ctx.out.line(f"{agency.id}/{source.id}: nothing ready to back up")
            continue
        for record in outcome.snapshots:
            size = f", dump {human_bytes(record.dump_bytes)}" if record.dump_bytes else ""
            ctx.out.line(f"{agency.id}/{source.id}: {record.label}: snapshot "
                         f"{(record.snapshot_id or 'none')[:8]}{size}")
        ctx.out.line(
            f"{agency.id}/{source.id}: snapshot {(s.snapshot_id or 'none')[:8]} "
            f"files new {s.files_new}, changed {s.files_changed}, unmodified "
            f"{s.files_unmodified}; added {human_bytes(s.data_added)} "
            f"of {human_bytes(s.total_bytes_processed)} in {outcome.seconds:.1f}s")
        verdict = outcome.guard
        if verdict is not None and verdict.suspect:
            ctx.out.error(f"{agency.id}/{source.id}: snapshot {verdict.snapshot_id[:8]} is "
                          f"SUSPECT (ransomware guard): {'; '.join(verdict.reasons)}; "
                          f"retention of agency {agency.id} is frozen (see 'drbackup guard "
                          f"status --agency {agency.id}' and runbooks/en/ransomware-suspected.md)")
        elif verdict is not None:
            ctx.out.line(f"{agency.id}/{source.id}: guard: clean ({verdict.reasons[0]})"
                         if verdict.reasons else f"{agency.id}/{source.id}: guard: clean")
        if outcome.unreadable:
            code = int(ExitCode.PARTIAL)
            ctx.out.line(f"warning: {len(outcome.unreadable)} item(s) could not be read; "
                         "the snapshot is valid but incomplete:")
            for item in outcome.unreadable[:20]:
                ctx.out.line(f"  {item}")
    ctx.out.result(outcomes)
    return code
