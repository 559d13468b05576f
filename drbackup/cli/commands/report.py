"""drbackup report [--agency A] [--json]: recoverability per agency and source, from state."""

from __future__ import annotations

from typing import Any

from drbackup.cli.context import CliContext
from drbackup.config.units import short_duration
from drbackup.jobs.dr_report import Objective, build_report


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "report", help="recoverability report: RPO/RTO measured vs targets, GB/T 20988 level")
    parser.add_argument("--agency", help="only this agency")
    parser.set_defaults(handler=report_now)



def _objective(value: Objective) -> str:
    mark = {True: "ok", False: "OVER", None: "?"}[value.met]
    return f"{short_duration(value.measured_seconds)}/{short_duration(value.target_seconds)} {mark}"


def report_now(ctx: CliContext) -> int:
    report = build_report(ctx.runtime, ctx.agencies(ctx.args.agency))
    rows: list[list[str]] = []
    for agency in report.agencies:
        for source in agency.sources:
            rows.append([
                agency.agency, source.source,
                source.last_good_backup.at[:19] if source.last_good_backup else "never",
                (f"{source.last_good_drill.at[:19]}" if source.last_good_drill else "never"),
                _objective(source.rpo), _objective(source.rto),
                str(source.gbt_20988.level or "-"),
            ])
    ctx.out.table(["AGENCY", "SOURCE", "LAST GOOD BACKUP", "LAST GOOD DRILL", "RPO",
                   "RTO (est.)", "GB/T 20988"], rows)
    for agency in report.agencies:
        level = agency.gbt_20988
        ctx.out.line("")
        ctx.out.line(f"{agency.agency}: GB/T 20988 level met: {level.level or 'none'}"
                     + (f" ({level.name}; figures {level.confidence})" if level.level else ""))
        check = agency.last_check
        if not agency.maintains_here:
            ctx.out.line(f"  checks, forget and prune: on {agency.maintenance_host} (its "
                         f"report has them); this host ({agency.host}) backs up the sources "
                         "above")
        else:
            ctx.out.line(f"  last check: {check.at[:19] + ' ' + (check.verdict or check.result)}"
                         if check else "  last check: never")
            ctx.out.line(f"  next data subset: {agency.next_data_subset}")
        offline = agency.offline_copy
        if offline is not None:
            ctx.out.line(f"  offline copy (3-2-1-1-0): {'met' if offline.met else 'NOT MET'}: "
                         f"{offline.reason}")
        for item in agency.evidence_from_media:
            what = f"{item.kind} {item.sub_kind or ''}".strip() + (
                f" of {item.source}" if item.source else "")
            rto = (f", RTO est. {item.rto_estimate_seconds:.0f}s"
                   if item.rto_estimate_seconds is not None else "")
            ctx.out.line(f"  from medium {item.medium} (done on {item.host}, where the data "
                         f"lives): {what}: {item.verdict or '?'} at "
                         f"{(item.finished_at or '?')[:19]}{rto}")
        for finding in agency.findings:
            ctx.out.line(f"  finding: {finding}")
        for blocker in level.next_level_blockers[:5]:
            ctx.out.line(f"  not higher: {blocker}")
    ctx.out.result(report)
    return 0
