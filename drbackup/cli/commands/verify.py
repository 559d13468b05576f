"""drbackup verify --agency A [--source S] [--kind check|files|db] [--read-data] [--json]

Runs the repository check and restore drills now; exits VERIFY_FAILED (18) when any verdict
is "fail"."""

from __future__ import annotations

from typing import Any

from drbackup.cli.context import CliContext
from drbackup.cli.output import human_bytes
from drbackup.config.models import AgencyConfig, Source
from drbackup.errors import ExitCode, UsageError
from drbackup.jobs.check import CheckMode, CheckOutcome, run_check
from drbackup.jobs.drills import DrillOutcome, clean_stale_scratch, drill_kind, drill_source


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "verify", help="check the repository and run restore drills now")
    parser.add_argument("--agency", required=True)
    parser.add_argument("--source", help="drill only this source (default: all; with no "
                                         "--kind and no --source the repository is checked too)")
    parser.add_argument("--kind", choices=["check", "files", "db"],
                        help="only the repository check, file drills or database drills")
    data = parser.add_mutually_exclusive_group()
    data.add_argument("--read-data", action="store_true",
                      help="the check reads all pack data (default: the next rotating subset)")
    data.add_argument("--structure-only", action="store_true",
                      help="the check verifies the structure only, reading no pack data")
    parser.set_defaults(handler=verify_now)


def check_json(outcome: CheckOutcome) -> dict[str, Any]:
    return {
        "type": "check", "run_id": outcome.run_id, "agency": outcome.agency,
        "store": outcome.store, "kind": outcome.kind, "subset": outcome.subset,
        "verdict": outcome.verdict, "seconds": round(outcome.seconds, 3),
        "num_errors": outcome.result.num_errors, "broken_packs": outcome.result.broken_packs,
        "findings": outcome.findings, "report": str(outcome.report.path),
        "report_key": outcome.report.store_key, "upload_error": outcome.report.upload_error,
    }


def drill_json(outcome: DrillOutcome) -> dict[str, Any]:
    timing = outcome.timing
    return {
        "type": "drill", "run_id": outcome.run_id, "agency": outcome.agency,
        "source": outcome.source, "kind": outcome.kind, "verdict": outcome.verdict,
        "snapshot_id": outcome.snapshot_id,
        "bytes": None if timing is None else timing.bytes,
        "seconds": None if timing is None else round(timing.seconds, 3),
        "throughput": None if timing is None else timing.throughput,
        "restore_size": None if timing is None else timing.restore_size,
        "rto_estimate_seconds": None if timing is None else timing.rto_estimate_seconds,
        "rto_target_seconds": None if timing is None else timing.rto_target_seconds,
        "reasons": outcome.reasons, "findings": outcome.findings,
        "counts": outcome.extra.get("counts"), "tables": outcome.extra.get("tables"),
        "report": str(outcome.report.path), "report_key": outcome.report.store_key,
        "upload_error": outcome.report.upload_error,
    }


def _sources(agency: AgencyConfig, source_id: str | None, kind: str | None) -> list[Source]:
    if source_id:
        source = agency.source(source_id)
        found = drill_kind(source)
        if found is None:
            hint = ("set drill_postgres_dsn (or drill_target = \"local-instance\") when the "
                    "folder holds PostgreSQL dumps"
                    if source.kind == "dumpdir" else "drill a directory or database source")
            raise UsageError(f"source {source.id!r} ({source.kind}) has no restore drill",
                             hint)
        if kind not in (None, found):
            raise UsageError(f"source {source.id!r} is a {found} source, not {kind}",
                             f"use --kind {found} or leave --kind out")
        return [source]
    return [s for s in agency.sources
            if drill_kind(s) is not None and kind in (None, drill_kind(s))]


def verify_now(ctx: CliContext) -> int:
    agency = ctx.config.agency(ctx.args.agency)
    kind: str | None = ctx.args.kind
    rt = ctx.runtime
    for leftover in clean_stale_scratch(rt):
        ctx.out.line(f"removed leftover drill scratch space {leftover}")
    checks: list[CheckOutcome] = []
    drills: list[DrillOutcome] = []
    if kind == "check" or (kind is None and not ctx.args.source):
        mode: CheckMode = ("full" if ctx.args.read_data else
                           "structure" if ctx.args.structure_only else "subset")
        outcome = run_check(rt, agency, mode=mode)
        checks.append(outcome)
        what = outcome.kind + (f" {outcome.subset}" if outcome.subset else "")
        ctx.out.line(f"{agency.id}: check ({what}): {outcome.verdict.upper()} "
                     f"in {outcome.seconds:.1f}s")
        for finding in outcome.findings[:10]:
            ctx.out.line(f"  {finding}")
    if kind != "check":
        for source in _sources(agency, ctx.args.source, kind):
            drill = drill_source(rt, agency, source)
            drills.append(drill)
            timing = drill.timing
            measured = "" if timing is None else (
                f"; restored {human_bytes(timing.bytes)} in {timing.seconds:.1f}s, "
                f"full-restore estimate {timing.rto_estimate_seconds:.0f}s "
                f"(RTO {timing.rto_target_seconds:.0f}s)")
            ctx.out.line(f"{agency.id}/{source.id}: {drill.kind} drill: "
                         f"{drill.verdict.upper()}{measured}")
            for finding in drill.findings[:20]:
                ctx.out.line(f"  {finding}")
    failed = any(not c.passed for c in checks) or any(not d.passed for d in drills)
    warned = any(d.verdict == "warning" for d in drills)
    verdict = "fail" if failed else ("warning" if warned else "pass")
    ctx.out.result({"agency": agency.id, "verdict": verdict,
                    "checks": [check_json(c) for c in checks],
                    "drills": [drill_json(d) for d in drills]})
    ctx.out.line(f"verdict: {verdict.upper()}; signed reports in "
                 f"{rt.config.daemon.state_dir / 'reports' / agency.id}")
    return int(ExitCode.VERIFY_FAILED) if failed else 0
