"""What a person does with the guard (#16): see its state, and release a freeze, either once
an incident is handled or for a false alarm (which teaches the source). Each release is
recorded as a 'guard-release' run with the time, the user and the reason, and published as a
signed evidence report like drill evidence."""

from __future__ import annotations

import getpass
import logging
import os
import re
import time
from dataclasses import dataclass, field

from drbackup.config.models import AgencyConfig, DirectorySource
from drbackup.errors import NotFoundError, UsageError
from drbackup.guard import listing
from drbackup.guard.verdict import learned
from drbackup.jobs.evidence import publish_report, report_name, utc_iso
from drbackup.jobs.guard import listing_path
from drbackup.jobs.recording import recorded_run
from drbackup.jobs.runtime import Runtime
from drbackup.state import guard as records

log = logging.getLogger(__name__)
_SNAPSHOT_PREFIX = re.compile(r"[0-9a-f]{8,64}")
MAX_REASON = 500


@dataclass(frozen=True)
class SourceGuard:
    source: str
    last: records.VerdictRecord | None
    last_clean: records.VerdictRecord | None
    suspects: list[records.VerdictRecord] = field(default_factory=list)  # in the freeze


@dataclass(frozen=True)
class GuardStatus:
    agency: str
    enabled: bool
    freeze: records.FreezeRecord | None
    sources: list[SourceGuard]


@dataclass(frozen=True)
class ReleaseOutcome:
    run_id: int
    agency: str
    released: bool  # the freeze is closed
    false_alarm: records.VerdictRecord | None
    still_suspect: list[records.VerdictRecord]
    report: str | None  # where the signed record went


def guard_status(rt: Runtime, agency: AgencyConfig) -> GuardStatus:
    state = rt.state
    freeze = records.open_freeze(state, agency.id)
    in_freeze = records.suspects_in_freeze(state, freeze) if freeze else []
    sources = []
    for source in agency.sources:
        if not isinstance(source, DirectorySource):
            continue
        newest = records.verdicts(state, agency.id, source.id, limit=1)
        sources.append(SourceGuard(
            source.id, newest[0] if newest else None,
            records.last_clean(state, agency.id, source.id),
            [v for v in in_freeze if v.source == source.id]))
    return GuardStatus(agency.id, agency.guard.enabled, freeze, sources)


def current_user() -> str:
    """Who runs the command: the sudo caller when there is one, else the login name."""
    sudo = os.environ.get("SUDO_USER")
    try:
        me = getpass.getuser()
    except (KeyError, OSError):
        me = f"uid {os.getuid()}"
    return f"{sudo} (via sudo as {me})" if sudo and sudo != me else me


def _checked_reason(reason: str) -> str:
    text = " ".join(reason.split())
    if not text:
        raise UsageError("--reason is empty", "say why the freeze may end (recorded, signed)")
    if len(text) > MAX_REASON:
        raise UsageError(f"--reason is {len(text)} characters long (at most {MAX_REASON})",
                         "shorten it; put details in the incident record")
    return text


def _verdict_of(rt: Runtime, agency: AgencyConfig, snapshot: str) -> records.VerdictRecord:
    wanted = snapshot.strip().lower()
    if not _SNAPSHOT_PREFIX.fullmatch(wanted):
        raise UsageError(f"--snapshot {snapshot!r} is not a snapshot id (8 to 64 hex digits)",
                         "copy the id from 'drbackup guard status' or 'drbackup snapshots'")
    found = records.verdict_for(rt.state, agency.id, wanted)
    if found is None:
        raise NotFoundError(
            f"no guard verdict of agency {agency.id!r} names snapshot {wanted} (or the prefix "
            "is ambiguous)", f"see 'drbackup guard status --agency {agency.id}'")
    if found.verdict != records.SUSPECT:
        raise UsageError(f"snapshot {wanted[:8]} was judged clean: nothing to release",
                         "--false-alarm applies to a suspect snapshot")
    return found


def _accept_looks(rt: Runtime, agency: str, source: str) -> None:
    """After a false alarm, the files the guard took for encrypted are the agency's own: the
    listing stops counting them as earlier victims (else the next equal workload adds to
    them and trips the rule again)."""
    path = listing_path(rt, agency, source)
    try:
        found = listing.load(path)
        if found is None:
            return
        for entry in found.entries.values():
            if entry.look == listing.ENCRYPTED:
                entry.look = listing.OK
        listing.save(path, found)
    except (listing.ListingError, OSError) as exc:
        log.warning("guard: listing %s not updated after the false alarm: %s", path, exc,
                    extra={"agency": agency, "source": source})


def release(rt: Runtime, agency: AgencyConfig, *, reason: str, snapshot: str | None = None,
            false_alarm: bool = False, by: str | None = None) -> ReleaseOutcome:
    """Release the agency's freeze; with snapshot + false_alarm, mark that verdict a false
    alarm (its rules learn an allowance) and close the freeze once no suspect verdict is left
    in it. Raises UsageError, NotFoundError."""
    text = _checked_reason(reason)
    if (snapshot is None) != (not false_alarm):
        raise UsageError("--snapshot and --false-alarm go together",
                         "release the whole freeze with --reason alone, or name the snapshot "
                         "that was a false alarm with --snapshot ID --false-alarm")
    user = by or current_user()
    state = rt.state
    freeze = records.open_freeze(state, agency.id)
    verdict = _verdict_of(rt, agency, snapshot) if snapshot is not None else None
    if freeze is None and verdict is None:
        raise NotFoundError(f"agency {agency.id!r} has no retention freeze",
                            f"see 'drbackup guard status --agency {agency.id}'")
    now = time.time()
    with recorded_run(rt, "guard-release", agency.id, source=verdict.source if verdict else None,
                      trigger="cli") as run:
        if verdict is not None and not verdict.false_alarm:
            taught = learned(verdict.rule_values, verdict.rules,
                             records.allowances(state, agency.id, verdict.source))
            records.mark_false_alarm(state, verdict, taught)
            _accept_looks(rt, agency.id, verdict.source)
            verdict = records.verdict_for(state, agency.id, verdict.snapshot_id) or verdict
        left = records.suspects_in_freeze(state, freeze) if freeze else []
        closed = freeze is not None and not left
        if freeze is not None and closed:
            records.close_freeze(state, freeze, by=user, reason=text,
                                 false_alarm=verdict is not None)
        elif freeze is not None and verdict is None:
            records.close_freeze(state, freeze, by=user, reason=text, false_alarm=False)
            closed, left = True, []
        report = {"kind": "guard-release", "agency": agency.id, "host": rt.hostname,
                  "released_at": utc_iso(now), "released_by": user, "reason": text,
                  "false_alarm": verdict.as_json() if verdict else None,
                  "freeze": None if freeze is None else {
                      "since": utc_iso(freeze.since), "snapshot_id": freeze.snapshot_id,
                      "source": freeze.source},
                  "freeze_closed": closed, "still_suspect": [v.snapshot_id for v in left]}
        published = publish_report(rt, agency, report_name(
            "guard-release", verdict.source if verdict else "agency", run.run_id, now),
            report)
        run.finish("success", details={k: v for k, v in report.items() if k != "kind"})
    log.warning("guard: %s by %s: %s", "freeze released" if closed else "false alarm marked",
                user, text, extra={"agency": agency.id})
    return ReleaseOutcome(run.run_id, agency.id, closed, verdict, left,
                          published.store_key or str(published.path))
