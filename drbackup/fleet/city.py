"""The city report (#20 item 2), pure: from the summary files read out of the stores, the
keyring and the city inventory, the verdict of every agency and host. Reading the stores is
jobs/fleet_report.py's; rendering is cli/commands/fleet.py's. The JSON shape (format
drbackup-fleet-report/1) is documented in docs/fleet.md.

Rules, in the order they apply:
- every file is judged (fleet/trust.py) against the keyring; replay is judged against the
  highest sequence any genuine summary of that host carries in this read (one publication
  covers all of a host's agencies under one sequence, jobs/fleet_publish.py), so an older file
  put back in place of a newer one, in any agency or store, is replayed;
- a file whose object key names another host or agency than its content is malformed (a
  genuine summary copied elsewhere must not vouch for another agency);
- a summary published before `since` is stale, like one past its own validity;
- per agency and host the newest trusted copy counts (the same file sits in each of the
  agency's stores); without one, the best untrusted copy is shown for what it is;
- an agency meets its level when every host row is trusted and good; it is not meeting when a
  trusted host row is failing; otherwise unknown (a stale, replayed, unsigned or unmeasured
  row is never counted good); an expected agency with no summary at all is unprotected.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drbackup.fleet.inventory import ExpectedAgency
from drbackup.fleet.summary import AgencySummary, SourceStatus, verdict_of
from drbackup.fleet.trust import Judged, Keyring, Trust, judge

REPORT_FORMAT = "drbackup-fleet-report/1"
MEETING, NOT_MEETING, UNKNOWN, UNPROTECTED = "meeting", "not-meeting", "unknown", "unprotected"
# Order of rows: the most important first.
_ORDER = {UNPROTECTED: 0, NOT_MEETING: 1, UNKNOWN: 2, MEETING: 3}
_TRUST_RANK = {Trust.TRUSTED: 0, Trust.STALE: 1, Trust.REPLAYED: 2, Trust.BAD_SIGNATURE: 3,
               Trust.UNKNOWN_KEY: 4, Trust.MALFORMED: 5}


@dataclass(frozen=True)
class SummaryFile:
    """One file as read: where it was, and what its key says it is."""
    store: str
    key: str
    agency: str  # from the key (validated by the reader)
    host: str  # from the key
    body: bytes


@dataclass(frozen=True)
class FileVerdict:
    store: str
    key: str
    agency: str
    host: str
    trust: str
    reason: str
    key_id: str | None
    sequence: int | None


@dataclass(frozen=True)
class HostRow:
    """One host's word on one agency."""
    host: str
    trust: str  # fleet/trust.py Trust values
    verdict: str  # good / failing / unknown (trusted) or the trust state
    reason: str
    key_id: str | None
    sequence: int | None
    published_at: float | None
    age_seconds: float | None
    valid_seconds: float | None
    stores: list[str]  # where this copy was found
    level_met: int | None
    level_required: int | None
    rpo_seconds: float | None  # the worst source's measured RPO
    rpo_target_seconds: float | None
    rto_estimate_seconds: float | None  # the worst source's estimate
    rto_target_seconds: float | None
    last_good_drill_age_seconds: float | None  # the oldest of its sources' last good drills
    replicas: list[dict[str, object]]
    guard_frozen: bool | None
    offline_copy: dict[str, object] | None
    findings: list[str]
    sources: list[SourceStatus]  # each with its bounded history (fleet/history.py), if any
    drbackup_version: str | None
    verify_max_age_seconds: float | None = None  # the agency's drill-age limit, if published


@dataclass(frozen=True)
class AgencyRow:
    agency: str
    name: str | None  # from the inventory
    expected: bool
    verdict: str  # meeting / not-meeting / unknown / unprotected
    level_required: int | None
    level_met: int | None  # the lowest of its trusted host rows
    hosts: list[HostRow]
    reasons: list[str]


@dataclass(frozen=True)
class HostState:
    host: str
    key_ids: list[str]
    newest_sequence: int | None
    newest_published_at: float | None
    stale: bool  # its newest genuine summary is past its validity (or before --since)
    agencies: list[str]


@dataclass(frozen=True)
class CitySummary:
    agencies: int
    meeting: int
    not_meeting: int
    unknown: int
    unprotected: int
    hosts: int
    stale_hosts: list[str]
    untrusted_files: int


@dataclass(frozen=True)
class FleetReport:
    format: str
    generated_at: float
    since: float | None
    stores: list[str]
    keyring: list[str]  # trusted key ids
    summary: CitySummary
    unprotected: list[str]
    agencies: list[AgencyRow]
    hosts: list[HostState]
    untrusted: list[FileVerdict]
    unreadable: list[dict[str, object]] = field(default_factory=list)

    @property
    def all_good(self) -> bool:
        return (not self.unreadable and not self.untrusted
                and all(a.verdict == MEETING for a in self.agencies))


def _judge_all(files: list[SummaryFile], keyring: Keyring, now: float, since: float | None
               ) -> list[tuple[SummaryFile, Judged]]:
    first = [(f, judge(f.body, keyring, now=now)) for f in files]
    newest: dict[str, int] = {}
    for _, judged in first:
        if judged.summary is not None and judged.trust in (Trust.TRUSTED, Trust.STALE):
            host = judged.summary.host
            newest[host] = max(newest.get(host, 0), judged.summary.sequence)
    result = []
    for file, _ in first:
        judged = judge(file.body, keyring, now=now, newest_seen=newest)
        summary = judged.summary
        if summary is not None and (summary.host != file.host or summary.agency != file.agency):
            judged = Judged(Trust.MALFORMED, None, judged.key_id,
                            f"signed for {summary.host}/{summary.agency}, found at "
                            f"{file.host}/{file.agency}: moved, not trusted")
        elif summary is not None and judged.trust is Trust.TRUSTED and since is not None \
                and summary.published_at < since:
            judged = Judged(Trust.STALE, summary, judged.key_id,
                            "published before --since")
        result.append((file, judged))
    return result


def _worst(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def _host_row(host: str, copies: list[tuple[SummaryFile, Judged]], now: float,
              required: int | None) -> HostRow:
    copies.sort(key=lambda c: (_TRUST_RANK[c[1].trust],
                               -(c[1].summary.sequence if c[1].summary else -1)))
    best = copies[0][1]
    stores = sorted({f.store for f, j in copies if j.trust is best.trust and (
        j.summary is None or best.summary is None
        or j.summary.sequence == best.summary.sequence)})
    s: AgencySummary | None = best.summary
    if s is None:
        return HostRow(host, best.trust.value, best.trust.value, best.reason, best.key_id, None,
                       None, None, None, stores, None, required, None, None, None, None, None,
                       [], None, None, [], [], None)
    level_required = required if required is not None else s.level_required
    verdict = (verdict_of(s.findings + [f for x in s.sources for f in x.findings], s.level_met,
                          level_required)
               if best.trust is Trust.TRUSTED else best.trust.value)
    drills = [x.last_good_drill_at for x in s.sources]
    drill_age = (None if not drills or any(d is None for d in drills)
                 else max(now - d for d in drills if d is not None))
    worst_rpo = max(s.sources, key=lambda x: (x.rpo_seconds is None, x.rpo_seconds or 0),
                    default=None)
    worst_rto = max(s.sources, key=lambda x: (x.rto_estimate_seconds is None,
                                              x.rto_estimate_seconds or 0), default=None)
    return HostRow(
        host=host, trust=best.trust.value, verdict=verdict, reason=best.reason,
        key_id=best.key_id, sequence=s.sequence, published_at=s.published_at,
        age_seconds=round(now - s.published_at, 1), valid_seconds=s.valid_seconds,
        stores=stores, level_met=s.level_met, level_required=level_required,
        rpo_seconds=worst_rpo.rpo_seconds if worst_rpo else None,
        rpo_target_seconds=worst_rpo.rpo_target_seconds if worst_rpo else None,
        rto_estimate_seconds=worst_rto.rto_estimate_seconds if worst_rto else None,
        rto_target_seconds=worst_rto.rto_target_seconds if worst_rto else None,
        last_good_drill_age_seconds=None if drill_age is None else round(drill_age, 1),
        replicas=[{"store": r.store, "lag_seconds": r.lag_seconds} for r in s.replicas],
        guard_frozen=s.guard_frozen, offline_copy=s.offline_copy, findings=s.findings,
        sources=s.sources, drbackup_version=s.drbackup_version,
        verify_max_age_seconds=s.verify_max_age_seconds)


def _agency_row(agency: str, rows: list[HostRow], expected: ExpectedAgency | None
                ) -> AgencyRow:
    required = expected.level if expected and expected.level is not None else None
    if not rows:
        return AgencyRow(agency, expected.name if expected else None, expected is not None,
                         UNPROTECTED, required, None, [],
                         ["expected by the city inventory, but no host publishes a summary"])
    reasons = [f"{r.host}: {r.verdict}" + (f" ({r.reason})" if r.reason else "")
               for r in rows if r.verdict != "good"]
    if any(r.verdict == "failing" for r in rows):
        verdict = NOT_MEETING
    elif all(r.verdict == "good" for r in rows):
        verdict = MEETING
    else:
        verdict = UNKNOWN
    levels = [r.level_met for r in rows if r.trust == Trust.TRUSTED.value]
    level_met = None if not levels or None in levels else min(x for x in levels if x)
    if required is None:
        required = next((r.level_required for r in rows if r.level_required is not None), None)
    return AgencyRow(agency, expected.name if expected else None, expected is not None,
                     verdict, required, level_met, rows, reasons)


def city_report(files: list[SummaryFile], keyring: Keyring, *, now: float, stores: list[str],
                expected: list[ExpectedAgency] | None = None, since: float | None = None,
                unreadable: list[dict[str, object]] | None = None) -> FleetReport:
    """The report of every agency found in `files` or expected by the inventory."""
    judged = _judge_all(files, keyring, now, since)
    inventory = {e.agency: e for e in expected or []}
    by_agency: dict[str, dict[str, list[tuple[SummaryFile, Judged]]]] = {}
    for file, verdict in judged:
        by_agency.setdefault(file.agency, {}).setdefault(file.host, []).append((file, verdict))
    agencies = []
    for agency in sorted(set(by_agency) | set(inventory)):
        entry = inventory.get(agency)
        required = entry.level if entry else None
        rows = [_host_row(host, copies, now, required)
                for host, copies in sorted(by_agency.get(agency, {}).items())]
        agencies.append(_agency_row(agency, rows, entry))
    agencies.sort(key=lambda a: (_ORDER[a.verdict], a.agency))
    hosts = _hosts(judged)
    untrusted = [FileVerdict(f.store, f.key, f.agency, f.host, j.trust.value, j.reason,
                             j.key_id, j.summary.sequence if j.summary else None)
                 for f, j in judged if j.trust is not Trust.TRUSTED]
    counts = {v: sum(1 for a in agencies if a.verdict == v) for v in _ORDER}
    return FleetReport(
        format=REPORT_FORMAT, generated_at=now, since=since, stores=stores,
        keyring=sorted(keyring.keys), summary=CitySummary(
            agencies=len(agencies), meeting=counts[MEETING], not_meeting=counts[NOT_MEETING],
            unknown=counts[UNKNOWN], unprotected=counts[UNPROTECTED], hosts=len(hosts),
            stale_hosts=[h.host for h in hosts if h.stale], untrusted_files=len(untrusted)),
        unprotected=[a.agency for a in agencies if a.verdict == UNPROTECTED],
        agencies=agencies, hosts=hosts, untrusted=untrusted, unreadable=unreadable or [])


def _hosts(judged: list[tuple[SummaryFile, Judged]]) -> list[HostState]:
    """Per host (by the name in genuine summaries): its newest publication, stale or not."""
    genuine: dict[str, list[Judged]] = {}
    for _, j in judged:
        if j.summary is not None and j.trust in (Trust.TRUSTED, Trust.STALE, Trust.REPLAYED):
            genuine.setdefault(j.summary.host, []).append(j)
    states = []
    for host, found in sorted(genuine.items()):
        newest = max(found, key=lambda j: j.summary.sequence if j.summary else -1)
        assert newest.summary is not None
        current = [j for j in found if j.summary and j.summary.sequence
                   == newest.summary.sequence]
        states.append(HostState(
            host=host, key_ids=sorted({j.key_id for j in found if j.key_id}),
            newest_sequence=newest.summary.sequence,
            newest_published_at=newest.summary.published_at,
            stale=all(j.trust is Trust.STALE for j in current),
            agencies=sorted({j.summary.agency for j in current if j.summary})))
    return states
