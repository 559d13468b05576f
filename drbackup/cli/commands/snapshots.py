"""drbackup snapshots [--agency A] [--source S]: with the ransomware guard's mark of each
(GUARD: clean, SUSPECT, false-alarm, or - when this host's state has no verdict on it) and the
host that made it: an agency's sources may be backed up by several hosts (docs/multi-host.md),
and every one of their snapshots is listed, whatever this host's config names. --from-media DIR
lists those on an offline medium instead (#19 §4): of the configured agencies it holds a copy of.
"""

from __future__ import annotations

from typing import Any

from drbackup.cli import medium as media_option
from drbackup.cli.context import CliContext
from drbackup.cli.output import human_bytes
from drbackup.jobs.restore import guard_verdict, list_snapshots
from drbackup.state.guard import VerdictRecord


def register(commands: Any) -> None:
    parser = commands.add_parser("snapshots", help="list snapshots")
    parser.add_argument("--agency", help="only this agency (default: all)")
    parser.add_argument("--source", help="only this source")
    parser.add_argument("--store", help="read this store (e.g. a replica) instead of the primary")
    media_option.add_arguments(parser)
    parser.set_defaults(handler=show_snapshots)


def guard_fields(verdict: VerdictRecord | None) -> dict[str, object]:
    """The guard's mark in --json: "guard" is the verdict ("clean" also for a suspect one
    released as a false alarm) or null when unassessed; reasons only for a suspect one."""
    if verdict is None:
        return {"guard": None, "suspect": False, "suspect_reasons": [], "false_alarm": False}
    return {"guard": "suspect" if verdict.suspect else "clean", "suspect": verdict.suspect,
            "suspect_reasons": list(verdict.reasons) if verdict.suspect else [],
            "false_alarm": verdict.false_alarm}


def guard_column(verdict: VerdictRecord | None) -> str:
    if verdict is None:
        return "-"
    if verdict.suspect:
        return "SUSPECT"
    return "false-alarm" if verdict.false_alarm else "clean"


def show_snapshots(ctx: CliContext) -> int:
    rows: list[list[str]] = []
    found: list[dict[str, object]] = []
    suspects = 0
    agencies = ctx.agencies(ctx.args.agency)
    store = media_option.open_if_asked(ctx, agencies, only_present=not ctx.args.agency)
    if store is not None and ctx.runtime.medium is not None:
        agencies = [a for a in agencies if a.id in ctx.runtime.medium.agencies]
    for agency in agencies:
        for snap in list_snapshots(ctx.runtime, agency, ctx.args.source,
                                   store_name=store or ctx.args.store, fresh=True):
            verdict = guard_verdict(ctx.runtime, agency.id, snap)
            suspects += bool(verdict and verdict.suspect)
            size = snap.summary.total_bytes_processed if snap.summary else None
            found.append({"agency": agency.id, "source": snap.tag("source"), "id": snap.id,
                          "time": snap.time, "host": snap.hostname, "paths": snap.paths,
                          "tags": snap.tags, "bytes": size, **guard_fields(verdict)})
            rows.append([snap.short_id, snap.time.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                         agency.id, snap.tag("source") or "-", snap.hostname,
                         human_bytes(size) if size is not None else "-", guard_column(verdict),
                         ", ".join(snap.paths)])
    if ctx.out.json_mode:
        ctx.out.result(found)
    else:
        ctx.out.table(["ID", "TIME", "AGENCY", "SOURCE", "HOST", "SIZE", "GUARD", "PATHS"], rows)
        hosts = {str(item["host"]) for item in found}
        ctx.out.line(f"{len(rows)} snapshot(s)" + (
            f" from {len(hosts)} hosts ({', '.join(sorted(hosts))})" if len(hosts) > 1 else ""
        ) + (
            f", {suspects} SUSPECT (ransomware guard): restore with --last-clean, or check "
            "a snapshot's content before restoring it" if suspects else ""))
    return 0
