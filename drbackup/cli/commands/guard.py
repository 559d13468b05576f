"""drbackup guard status [--agency A]; drbackup guard release --agency A --reason TEXT
[--snapshot ID --false-alarm]"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from drbackup.cli.context import CliContext


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "guard", help="the ransomware guard: verdicts, retention freezes, release")
    verbs = parser.add_subparsers(dest="guard_command", metavar="ACTION")
    verbs.required = True
    status = verbs.add_parser(
        "status", help="each source's last verdict and last clean snapshot; open freezes")
    status.add_argument("--agency", help="only this agency (default: all)")
    status.set_defaults(handler=show_status)
    release = verbs.add_parser(
        "release", help="end an agency's retention freeze (recorded with user and reason, "
                        "signed); with --snapshot ID --false-alarm, teach the source instead")
    release.add_argument("--agency", required=True)
    release.add_argument("--reason", required=True, help="why the freeze may end (recorded)")
    release.add_argument("--snapshot", metavar="ID",
                         help="the suspect snapshot that was a false alarm")
    release.add_argument("--false-alarm", action="store_true",
                         help="the snapshot was not an attack: its rules learn to allow it")
    release.set_defaults(handler=release_freeze)


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def show_status(ctx: CliContext) -> int:
    from drbackup.jobs.guard_admin import guard_status

    found = []
    rows: list[list[str]] = []
    for agency in ctx.agencies(ctx.args.agency):
        status = guard_status(ctx.runtime, agency)
        found.append(status)
        if status.freeze is not None:
            ctx.out.line(f"{agency.id}: RETENTION FROZEN since {_when(status.freeze.since)} "
                         f"(suspect snapshot {status.freeze.snapshot_id[:8]} of "
                         f"{status.freeze.source}); release: drbackup guard release --agency "
                         f"{agency.id} --reason TEXT")
        for source in status.sources:
            last = source.last
            rows.append([
                agency.id, source.source,
                "off" if not status.enabled else (
                    "-" if last is None else ("SUSPECT" if last.suspect else (
                        "false alarm" if last.false_alarm else "clean"))),
                last.snapshot_id[:8] if last else "-",
                source.last_clean.snapshot_id[:8] if source.last_clean else "-",
                _when(source.last_clean.assessed_at) if source.last_clean else "-",
                (last.reasons[0] if last and last.reasons else "")[:120]])
    ctx.out.table(["AGENCY", "SOURCE", "VERDICT", "SNAPSHOT", "LAST CLEAN", "ASSESSED",
                   "WHY"], rows)
    ctx.out.result(found)
    frozen = sum(1 for s in found if s.freeze is not None)
    if frozen:
        ctx.out.line(f"{frozen} agenc{'y' if frozen == 1 else 'ies'} frozen")
    return 0


def release_freeze(ctx: CliContext) -> int:
    from drbackup.jobs.guard_admin import release

    agency = ctx.config.agency(ctx.args.agency)
    outcome = release(ctx.runtime, agency, reason=ctx.args.reason, snapshot=ctx.args.snapshot,
                      false_alarm=ctx.args.false_alarm)
    if outcome.false_alarm is not None:
        ctx.out.line(f"{agency.id}: snapshot {outcome.false_alarm.snapshot_id[:8]} marked a "
                     f"false alarm; source {outcome.false_alarm.source} now allows "
                     f"{', '.join(outcome.false_alarm.rules) or 'it'} up to 25 % above it")
    if outcome.released:
        ctx.out.line(f"{agency.id}: retention freeze released (recorded in run "
                     f"{outcome.run_id}; signed record {outcome.report})")
    else:
        ids = ", ".join(v.snapshot_id[:8] for v in outcome.still_suspect)
        ctx.out.line(f"{agency.id}: retention stays frozen: suspect snapshot(s) {ids} remain")
    ctx.out.result(outcome)
    return 0
