"""drbackup fleet publish | report: the city-wide picture (#20, docs/fleet.md).

`publish` signs this host's summary of every agency and writes it into the agency's stores
(the daemon does it on [fleet] publish_schedule and after every verdict change).
`report` reads every host's summaries from the stores with read-only credentials, judges them
against a keyring of trusted host keys and prints the city table (`--html FILE`: the same
report as one self-contained page, cli/fleet_html.py). Its exit code: the store's
(7/8/9) when a store could not be read, else 30 (FLEET_NOT_ALL_GOOD) unless every agency meets
its level and every file read is trusted, else 0."""

from __future__ import annotations

import os
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from drbackup.cli.context import CliContext
from drbackup.cli.fleet_html import DEFAULT_DRILL_LIMIT, render_html
from drbackup.cli.fleet_html_text import LANGUAGES
from drbackup.config.units import parse_duration, short_duration
from drbackup.errors import ExitCode, NotFoundError, UsageError
from drbackup.fleet.city import UNPROTECTED, FleetReport, HostRow
from drbackup.fleet.inventory import load_inventory
from drbackup.fleet.trust import Keyring
from drbackup.jobs.evidence import utc_iso
from drbackup.jobs.fleet_publish import publish_fleet
from drbackup.jobs.fleet_report import build_fleet_report


def register(commands: Any) -> None:
    parser = commands.add_parser("fleet", help="the city-wide picture: publish this host's "
                                               "signed summary, report every host's")
    verbs = parser.add_subparsers(dest="fleet_verb", required=True, metavar="ACTION")
    publish = verbs.add_parser("publish", help="sign and write this host's summary of every "
                                               "agency into the agency's stores, now")
    publish.set_defaults(handler=publish_cmd)
    report = verbs.add_parser("report", help="read every host's summary from the stores and "
                                             "print the city table (no repository password)")
    report.add_argument("--store", action="append", metavar="S",
                        help="a configured store to read (repeatable; default: every store)")
    report.add_argument("--keyring", type=Path, required=True, metavar="DIR",
                        help="directory of trusted hosts' evidence public keys (*.pem)")
    report.add_argument("--expect", type=Path, metavar="FILE",
                        help="the city inventory: agencies that must be protected "
                             "(docs/fleet.md)")
    report.add_argument("--since", metavar="WHEN",
                        help="count summaries published before WHEN as stale: an ISO time "
                             "(2026-12-07T08:00Z) or a duration back from now (6h)")
    report.add_argument("--html", type=Path, metavar="FILE",
                        help="also write the report as one self-contained HTML page "
                             "(no external resources; prints to A4)")
    report.add_argument("--lang", choices=LANGUAGES, default="en",
                        help="language of the HTML page (default en)")
    report.add_argument("--drill-limit", metavar="DURATION", default=None,
                        help="the drill-age limit the HTML page draws for an agency whose "
                             "summary does not carry its own verify_max_age (default 8d, "
                             "its default)")
    report.set_defaults(handler=report_cmd)


def publish_cmd(ctx: CliContext) -> int:
    outcome = publish_fleet(ctx.runtime)
    for agency in outcome.agencies:
        where = ", ".join(u.store if u.key else f"{u.store} FAILED" for u in agency.uploads)
        ctx.out.line(f"{agency.agency}: {agency.verdict} (level {agency.level_met or '-'}"
                     f"/{agency.level_required or '-'}) -> {where}")
    for upload in outcome.failed:
        ctx.out.error(f"store {upload.store}: {upload.error}")
    ctx.out.line(f"host {outcome.host}: summary {outcome.sequence} signed by key "
                 f"{outcome.key_id}, valid {outcome.valid_seconds:.0f}s")
    ctx.out.result(outcome)
    failed = outcome.failed
    return int(failed[0].exit_code or ExitCode.STORE_ACCESS) if failed else 0


def _since(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return time.time() - parse_duration(text).total_seconds()
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since {text!r} is neither a time nor a duration",
                         "use e.g. 2026-12-07T08:00Z or 6h") from None
    if moment.tzinfo is None:
        raise UsageError(f"--since {text!r} has no time zone", "add Z or +08:00")
    return moment.timestamp()



def _pair(measured: float | None, target: float | None) -> str:
    return f"{short_duration(measured)}/{short_duration(target)}"


def _host_cells(row: HostRow) -> list[str]:
    replicas = " ".join(f"{r['store']}:{short_duration(r['lag_seconds'])}"  # type: ignore[arg-type]
                        for r in row.replicas) or "-"
    return [row.host, row.verdict, f"{row.level_met or '-'}/{row.level_required or '-'}",
            _pair(row.rpo_seconds, row.rpo_target_seconds),
            _pair(row.rto_estimate_seconds, row.rto_target_seconds),
            short_duration(row.last_good_drill_age_seconds), replicas,
            short_duration(row.age_seconds)]


def render(ctx: CliContext, report: FleetReport) -> None:
    if report.unprotected:
        ctx.out.line(f"UNPROTECTED (expected by the inventory, no host publishes them): "
                     f"{', '.join(report.unprotected)}")
        ctx.out.line("")
    rows: list[list[str]] = []
    for agency in report.agencies:
        verdict = agency.verdict.upper() if agency.verdict == UNPROTECTED else agency.verdict
        if not agency.hosts:
            rows.append([verdict, agency.agency, "-", "-",
                         f"-/{agency.level_required or '-'}", "-", "-", "-", "-", "-"])
        for index, host in enumerate(agency.hosts):
            first = index == 0
            rows.append([verdict if first else "", agency.agency if first else "",
                         *_host_cells(host)])
    ctx.out.table(["VERDICT", "AGENCY", "HOST", "HOST SAYS", "LEVEL", "RPO", "RTO (est.)",
                   "GOOD DRILL AGE", "REPLICA LAG", "PUBLISHED"], rows)
    summary = report.summary
    if summary.stale_hosts:
        ctx.out.line("")
        ctx.out.line(f"stale hosts (newest summary past its validity): "
                     f"{', '.join(summary.stale_hosts)}")
    if report.untrusted:
        ctx.out.line("")
        ctx.out.line("untrusted summaries (never counted good):")
        for file in report.untrusted:
            ctx.out.line(f"  {file.trust}: {file.store} {file.key}: {file.reason}")
    for problem in report.unreadable:
        ctx.out.error(f"store {problem['store']}: {problem['error']}")
    ctx.out.line("")
    ctx.out.line(f"city ({utc_iso(report.generated_at)[:19]}Z): {summary.agencies} agencies: "
                 f"{summary.meeting} meeting their level, {summary.not_meeting} not meeting, "
                 f"{summary.unknown} unknown, {summary.unprotected} unprotected; "
                 f"{summary.hosts} host(s), {len(summary.stale_hosts)} stale; "
                 f"{summary.untrusted_files} untrusted file(s)")


def _drill_limit(text: str | None) -> float:
    if text is None:
        return DEFAULT_DRILL_LIMIT
    try:
        seconds = parse_duration(text).total_seconds()
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        raise UsageError(f"--drill-limit {text!r} is not a duration", "use e.g. 8d or 36h")
    return seconds


def write_html(target: Path, page: str) -> None:
    """Write the page atomically (a reader never sees half of it). Raises UsageError."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(page)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        raise UsageError(f"cannot write the HTML report to {target}: {exc.strerror}",
                         "check the directory exists and is writable") from None


def report_cmd(ctx: CliContext) -> int:
    since = _since(ctx.args.since)
    html_file: Path | None = getattr(ctx.args, "html", None)
    drill_limit = _drill_limit(getattr(ctx.args, "drill_limit", None))
    keyring = Keyring.load(ctx.args.keyring)
    if not keyring.keys:
        raise NotFoundError(f"keyring {ctx.args.keyring} holds no *.pem key",
                            "copy each trusted host's <state_dir>/evidence/ed25519.pub.pem "
                            "into it")
    expected = load_inventory(ctx.args.expect) if ctx.args.expect else None
    report, _ = build_fleet_report(ctx.runtime, keyring, stores=ctx.args.store,
                                   expected=expected, since=since)
    render(ctx, report)
    if html_file is not None:
        # The same report object as --json: the page shows nothing the JSON does not hold.
        write_html(html_file, render_html(report, lang=getattr(ctx.args, "lang", "en"),
                                          drill_limit_seconds=drill_limit))
        ctx.out.line(f"HTML report written to {html_file}")
    ctx.out.result(report)
    if report.unreadable:
        code = report.unreadable[0].get("exit_code")
        return code if isinstance(code, int) and code else int(ExitCode.STORE_ACCESS)
    return 0 if report.all_good else int(ExitCode.FLEET_NOT_ALL_GOOD)
