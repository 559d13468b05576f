"""The recoverability report (`drbackup report`): per agency and source, the last backup, the
last good drill, measured RPO and RTO against the targets, and the GB/T 20988 level the measured
figures meet. Read from the state database only: no restic, no network.

The ransomware guard (#16) counts too: an agency whose retention is frozen by a suspect
snapshot meets no level until the freeze is released (the freeze is the first finding and the
first blocker, with the figures' own level after it), and a drill of a snapshot whose verdict is
still suspect is no good drill (it proves restic gives back what was backed up, not that it is
the agency's data).

The offline copy of 3-2-1-1-0 (#19) comes from the media catalogue: met when the agency has
[agencies.offline] and a verified medium whose newest snapshot is within its max_age; otherwise
the report says which of the three it lacks (a configured agency's lack is also a finding).
On the other side of the gap, the drills and checks done where the data lives come in on the
media with the snapshots (media import records them): `evidence_from_media` lists the newest
of each kind per source. They are the other host's evidence, shown as such: they do not count
as this host's drills for the GB/T 20988 level."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta

from drbackup.config.models import AgencyConfig
from drbackup.jobs.check import next_subset
from drbackup.jobs.evidence import utc_iso
from drbackup.jobs.maintenance import maintenance_role
from drbackup.jobs.runtime import Runtime
from drbackup.jobs.tags import is_snapshot_id
from drbackup.state import RunRecord
from drbackup.state import guard as records
from drbackup.state.media import VERIFIED, imported_evidence, media
from drbackup.verify.levels import GBT_20988_LEVELS, Measured, highest_level_met

REPORT_FORMAT = "drbackup-report/1"


@dataclass(frozen=True)
class RunSummary:
    run_id: int
    at: str
    result: str
    kind: str | None = None
    verdict: str | None = None
    snapshot_id: str | None = None
    report_path: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Objective:
    target_seconds: float
    measured_seconds: float | None
    met: bool | None  # None: not measured


@dataclass(frozen=True)
class LevelResult:
    level: int | None
    name: str | None
    confidence: str | None
    next_level_blockers: list[str]


@dataclass(frozen=True)
class SourceReport:
    source: str
    kind: str
    last_backup: RunSummary | None
    last_good_backup: RunSummary | None
    backups_last_24h: int
    backups_last_7d: int
    last_drill: RunSummary | None
    last_good_drill: RunSummary | None
    rpo: Objective
    rto: Objective
    gbt_20988: LevelResult
    findings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class OfflineCopy:
    """The "1 offline" of 3-2-1-1-0, from the media catalogue."""
    met: bool
    reason: str
    verified_media: int
    newest_snapshot_time: str | None
    age_seconds: float | None
    max_age_seconds: float | None


@dataclass(frozen=True)
class MediaEvidence:
    """A drill or check done on the host the medium came from (its signed report imported)."""
    kind: str  # drill | check
    source: str | None
    sub_kind: str | None  # files | db, or the check's kind
    verdict: str | None
    finished_at: str | None
    host: str
    rto_estimate_seconds: float | None
    medium: str
    report: str  # its file name under <state_dir>/reports/<agency>/
    key_id: str


@dataclass(frozen=True)
class AgencyReport:
    agency: str
    store: str
    last_check: RunSummary | None
    last_data_check: RunSummary | None
    next_data_subset: str
    sources: list[SourceReport]
    gbt_20988: LevelResult
    findings: list[str]
    offline_copy: OfflineCopy | None = None
    # Several hosts, one agency (docs/multi-host.md): this report is this host's, with the
    # sources it backs up; checks are the maintenance host's, whose report holds them.
    host: str = ""
    maintenance_host: str = ""
    maintains_here: bool = True
    evidence_from_media: list[MediaEvidence] = field(default_factory=list)


@dataclass(frozen=True)
class DrReport:
    format: str
    generated_at: str
    agencies: list[AgencyReport]
    levels: list[dict[str, object]]


def _summary(run: RunRecord | None) -> RunSummary | None:
    if run is None:
        return None
    return RunSummary(
        run_id=run.id, at=utc_iso(run.finished_at or run.started_at), result=run.result,
        kind=run.details.get("kind"), verdict=run.details.get("verdict"),
        snapshot_id=run.snapshot_id or run.details.get("snapshot_id"),
        report_path=run.details.get("report_path"), error=run.error)


def _level(measured: Measured) -> LevelResult:
    level, blockers = highest_level_met(measured)
    return LevelResult(level.level if level else None, level.name if level else None,
                       level.confidence if level else None, blockers)


def drilled_suspect(rt: Runtime, agency_id: str, run: RunRecord) -> str | None:
    """The id of the snapshot a drill restored when the guard's verdict on it is suspect (and
    not released as a false alarm), else None."""
    snapshot_id = run.snapshot_id or run.details.get("snapshot_id")
    if not isinstance(snapshot_id, str) or not is_snapshot_id(snapshot_id):
        return None
    found = records.verdict_for(rt.state, agency_id, snapshot_id)
    return snapshot_id if found and found.snapshot_id == snapshot_id and found.suspect else None


def _since(freeze: records.FreezeRecord) -> str:
    return utc_iso(float(int(freeze.since)))


def freeze_finding(rt: Runtime, freeze: records.FreezeRecord) -> str:
    first = records.verdict_for(rt.state, freeze.agency, freeze.snapshot_id)
    why = f" ({first.reasons[0]})" if first and first.reasons else ""
    return (f"retention frozen since {_since(freeze)}: snapshot {freeze.snapshot_id[:8]} of "
            f"source {freeze.source!r} is suspect{why}")


def frozen_level(freeze: records.FreezeRecord, measured: LevelResult) -> LevelResult:
    """No level while frozen; the blockers say why, then what the figures alone meet."""
    figures = ([f"the figures alone meet level {measured.level} ({measured.name})"]
               if measured.level else [])
    return LevelResult(None, None, None, [
        f"retention frozen since {_since(freeze)} by suspect snapshot "
        f"{freeze.snapshot_id[:8]}: no level counts until it is released ('drbackup guard "
        f"release --agency {freeze.agency}')", *figures, *measured.next_level_blockers][:10])


def source_report(rt: Runtime, agency: AgencyConfig, source_id: str, kind: str,
                  now: float) -> SourceReport:
    state = rt.state
    backups = state.runs(agency=agency.id, source=source_id, job="backup", limit=2000,
                         since=now - 8 * 86400)
    last_backup = state.last_run(agency=agency.id, source=source_id, job="backup")
    good = [r for r in backups if r.succeeded and r.snapshot_id]
    last_good_backup = good[0] if good else None
    if last_good_backup is None:
        older = [r for r in state.runs(agency=agency.id, source=source_id, job="backup",
                                       results=("success", "warning"), limit=50)
                 if r.snapshot_id]
        last_good_backup = older[0] if older else None
    drills = state.runs(agency=agency.id, source=source_id, job="drill", limit=200)
    finished_drills = [r for r in drills if r.result != "running"]
    last_drill = finished_drills[0] if finished_drills else None
    last_good_drill = next((r for r in finished_drills
                            if r.details.get("verdict") in ("pass", "warning")
                            and drilled_suspect(rt, agency.id, r) is None), None)
    rpo_seconds = (now - (last_good_backup.finished_at or last_good_backup.started_at)
                   if last_good_backup else None)
    rto_estimate = (last_good_drill.details.get("rto_estimate_seconds")
                    if last_good_drill else None)
    rpo_target = agency.rpo.total_seconds()
    rto_target = agency.rto.total_seconds()
    rpo = Objective(rpo_target, None if rpo_seconds is None else round(rpo_seconds, 1),
                    None if rpo_seconds is None else rpo_seconds <= rpo_target)
    rto = Objective(rto_target, None if rto_estimate is None else float(rto_estimate),
                    None if rto_estimate is None else float(rto_estimate) <= rto_target)
    measured = Measured(
        rpo=None if rpo_seconds is None else timedelta(seconds=rpo_seconds),
        rto_estimate=None if rto_estimate is None else timedelta(seconds=float(rto_estimate)),
        backups_last_7d=sum(1 for r in good if r.started_at >= now - 7 * 86400),
        backups_last_24h=sum(1 for r in good if r.started_at >= now - 86400),
        last_good_drill_age=None if last_good_drill is None else timedelta(
            seconds=now - (last_good_drill.finished_at or last_good_drill.started_at)),
    )
    findings: list[str] = []
    if last_good_backup is None:
        findings.append("no good backup")
    elif rpo.met is False:
        findings.append(f"RPO breached: last good backup {rpo_seconds:.0f}s ago, target "
                        f"{rpo_target:.0f}s")
    if last_drill is None:
        findings.append("never drilled")
    elif last_drill.details.get("verdict") not in ("pass", "warning"):
        findings.append(f"last drill failed: {last_drill.error or last_drill.result}")
    elif (suspect := drilled_suspect(rt, agency.id, last_drill)) is not None:
        findings.append(f"last drill restored suspect snapshot {suspect[:8]} (ransomware "
                        "guard): not counted as a good drill")
    if rto.met is False:
        findings.append(f"RTO estimate {rto.measured_seconds:.0f}s exceeds the target "
                        f"{rto_target:.0f}s")
    return SourceReport(
        source=source_id, kind=kind, last_backup=_summary(last_backup),
        last_good_backup=_summary(last_good_backup),
        backups_last_24h=measured.backups_last_24h, backups_last_7d=measured.backups_last_7d,
        last_drill=_summary(last_drill), last_good_drill=_summary(last_good_drill),
        rpo=rpo, rto=rto, gbt_20988=_level(measured), findings=findings)


def _age(seconds: float) -> str:
    return f"{seconds / 86400:.1f}d" if seconds >= 2 * 86400 else f"{seconds / 3600:.1f}h"


def offline_copy(rt: Runtime, agency: AgencyConfig, now: float) -> OfflineCopy:
    """Met when a verified medium holds a snapshot no older than [agencies.offline] max_age."""
    verified = [m for m in media(rt.state, agency.id) if m.state == VERIFIED]
    times = [m.newest_snapshot_time for m in verified if m.newest_snapshot_time is not None]
    newest = max(times) if times else None
    age = None if newest is None else max(0.0, now - newest)
    when = None if newest is None else utc_iso(newest)
    if agency.offline is None:
        return OfflineCopy(False, "no offline copy configured ([agencies.offline] unset)",
                           len(verified), when, age, None)
    limit = agency.offline.max_age.total_seconds()
    if age is None:
        reason = "no verified offline medium (drbackup media export)"
        return OfflineCopy(False, reason, len(verified), when, age, limit)
    if age > limit:
        reason = (f"newest offline copy is {_age(age)} old (snapshot {when}), older than "
                  f"max_age {_age(limit)}")
        return OfflineCopy(False, reason, len(verified), when, age, limit)
    reason = (f"newest offline copy {_age(age)} old (snapshot {when}) on {len(verified)} "
              f"verified medium(s), within max_age {_age(limit)}")
    return OfflineCopy(True, reason, len(verified), when, age, limit)


def evidence_from_media(rt: Runtime, agency: AgencyConfig) -> list[MediaEvidence]:
    """The newest imported drill per source and kind, and the newest imported check."""
    newest: dict[tuple[str, str | None, str | None], MediaEvidence] = {}
    for item in imported_evidence(rt.state, agency.id):  # newest first
        key = (item.kind, item.source, item.sub_kind)
        if key not in newest:
            newest[key] = MediaEvidence(
                item.kind, item.source, item.sub_kind, item.verdict,
                None if item.finished_at is None else utc_iso(item.finished_at), item.host,
                item.rto_estimate_seconds, item.label, item.name, item.key_id)
    return sorted(newest.values(), key=lambda e: (e.kind, e.source or "", e.sub_kind or ""))


def agency_report(rt: Runtime, agency: AgencyConfig, now: float) -> AgencyReport:
    sources = [source_report(rt, agency, s.id, s.kind, now) for s in agency.sources]
    checks = [r for r in rt.state.runs(agency=agency.id, job="check", limit=200)
              if r.result != "running" and r.store == agency.store]
    data_checks = [r for r in checks
                   if r.details.get("kind") in ("read-data-subset", "read-data")]
    findings = [f"{s.source}: {f}" for s in sources for f in s.findings]
    last_check = checks[0] if checks else None
    role = maintenance_role(rt.config, rt.state, agency)
    if not role.maintains_here:
        pass  # the maintenance host checks the repository: its report has the verdicts
    elif last_check is None:
        findings.append("repository never checked")
    elif last_check.details.get("verdict") != "pass":
        findings.append(f"last repository check failed: {last_check.error or last_check.result}")
    levels = [s.gbt_20988 for s in sources]
    if not levels or any(lv.level is None for lv in levels):
        agency_level = LevelResult(None, None, None,
                                   [b for lv in levels for b in lv.next_level_blockers][:10]
                                   or ["no sources"])
    else:
        lowest = min(levels, key=lambda lv: lv.level or 0)
        agency_level = lowest
    freeze = records.open_freeze(rt.state, agency.id)
    if freeze is not None:
        findings.insert(0, freeze_finding(rt, freeze))
        agency_level = frozen_level(freeze, agency_level)
    offline = offline_copy(rt, agency, now)
    if agency.offline is not None and not offline.met:
        findings.append(f"offline copy (3-2-1-1-0) not met: {offline.reason}")
    total = agency.verify.check_subsets
    return AgencyReport(
        agency=agency.id, store=agency.store, last_check=_summary(last_check),
        last_data_check=_summary(data_checks[0] if data_checks else None),
        next_data_subset=f"{next_subset(rt, agency, agency.store)}/{total}",
        sources=sources, gbt_20988=agency_level, findings=findings, offline_copy=offline,
        host=role.host, maintenance_host=role.repository_owner or role.maintenance_host,
        maintains_here=role.maintains_here, evidence_from_media=evidence_from_media(rt, agency))


def build_report(rt: Runtime, agencies: list[AgencyConfig], now: float | None = None
                 ) -> DrReport:
    moment = time.time() if now is None else now
    return DrReport(
        format=REPORT_FORMAT, generated_at=utc_iso(moment),
        agencies=[agency_report(rt, a, moment) for a in agencies],
        levels=[{
            "level": lv.level, "name": lv.name, "name_zh": lv.name_zh,
            "rpo_max_seconds": None if lv.rpo_max is None else lv.rpo_max.total_seconds(),
            "rto_max_seconds": None if lv.rto_max is None else lv.rto_max.total_seconds(),
            "min_backups_per_week": lv.min_backups_per_week,
            "min_backups_per_day": lv.min_backups_per_day,
            "measurable": lv.measurable, "confidence": lv.confidence,
            "requirement": lv.requirement} for lv in GBT_20988_LEVELS])
