"""The published status summary (#20 item 1): what one host says about one agency, signed with
the host's evidence key (drbackup.verify.evidence), so a reader of the bucket can judge every
agency of the city without trusting the host that stored the file.

One summary per host and agency, at <store prefix>/<agency>/fleet/<host>.json: a reader lists
agencies and reads one small file per host and agency (bounded by agencies, not by history).

The envelope is an evidence envelope (format drbackup-evidence/1) whose report is:
    {"format": "drbackup-fleet-summary/1", "host": ..., "agency": ..., "sequence": <int>,
     "published_at": <unix seconds>, "valid_seconds": <float>, "drbackup_version": ...,
     "verdict": "good"|"failing"|"unknown", "level_met": <int|null>, "level_required": ...,
     "sources": [...], "replicas": [...], "guard_frozen": bool|null,
     "offline_copy": {...}|null, "findings": [...], "verify_max_age_seconds": <float>}
Each source may carry "history" (fleet/history.py: worst RPO per day and the drills of the last
30 days, bounded to 4 KB); `verify_max_age_seconds` is the agency's drill-age limit. Both are
optional, so the format stays /1: a summary of an older drbackup, without them, parses as
"no history" and "limit unknown".
Only ids, times, figures and short fixed finding codes: no password, no file name, nothing a
reader of the bucket could not already see in the evidence. `offline_copy` is null when the
agency has no [agencies.offline]; otherwise the figures of the media catalogue (#19).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from drbackup.config.models import is_identifier
from drbackup.fleet.history import MalformedHistory, SourceHistory, parse_history

FORMAT = "drbackup-fleet-summary/1"
FLEET_DIR = "fleet"
VERDICTS = ("good", "failing", "unknown")
# Fixed finding codes: a summary never carries free text (an error message can hold a path).
FINDINGS = frozenset({"no-good-backup", "rpo-breached", "never-drilled", "drill-failed",
                      "drill-suspect", "rto-over", "never-checked", "check-failed",
                      "guard-frozen", "replica-lagging"})
# Findings that make a verdict "failing"; the others only inform (never-checked) or leave it
# "unknown" when nothing was measured yet (never-drilled: no level can be met).
FAILING_FINDINGS = frozenset({"no-good-backup", "rpo-breached", "drill-failed", "drill-suspect",
                              "rto-over", "check-failed", "guard-frozen", "replica-lagging"})
_HOST = re.compile(r"[a-z0-9]([a-z0-9._-]{0,251}[a-z0-9])?")
_OFFLINE_NUMBERS = ("age_seconds", "max_age_seconds", "newest_snapshot_at")


def verdict_of(findings: list[str], level_met: int | None, level_required: int | None) -> str:
    """good / failing / unknown from an agency's finding codes and levels."""
    if FAILING_FINDINGS.intersection(findings):
        return "failing"
    if level_met is None:
        return "unknown"
    if level_required is not None and level_met < level_required:
        return "failing"
    return "good"


def is_host_name(value: object) -> bool:
    """A host name as it may appear in an object key: lowercase DNS characters only."""
    return isinstance(value, str) and _HOST.fullmatch(value) is not None and ".." not in value


@dataclass(frozen=True)
class SourceStatus:
    source: str
    kind: str
    last_good_backup_at: float | None
    rpo_seconds: float | None
    rpo_target_seconds: float
    last_good_drill_at: float | None
    rto_estimate_seconds: float | None
    rto_target_seconds: float
    level_met: int | None
    findings: list[str] = field(default_factory=list)
    history: SourceHistory | None = None  # None: published by a drbackup without history


@dataclass(frozen=True)
class ReplicaStatus:
    store: str
    lag_seconds: float | None  # age of the newest copy of the primary's snapshot; None: none


@dataclass(frozen=True)
class AgencySummary:
    host: str
    agency: str
    sequence: int  # strictly increasing per host: a replayed older file has a lower one
    published_at: float
    valid_seconds: float  # after published_at + valid_seconds the summary is stale
    drbackup_version: str
    verdict: str
    level_met: int | None
    level_required: int | None
    sources: list[SourceStatus]
    replicas: list[ReplicaStatus] = field(default_factory=list)
    guard_frozen: bool | None = None  # None: the guard is not configured
    # {"met": bool, "verified_media": int, "newest_snapshot_at": float|None, "age_seconds":
    # float|None, "max_age_seconds": float|None}; None: no [agencies.offline]
    offline_copy: dict[str, Any] | None = None
    findings: list[str] = field(default_factory=list)
    verify_max_age_seconds: float | None = None  # the agency's drill-age limit; None: unknown

    def to_report(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}


def summary_key(agency_prefix: str, host: str) -> str:
    """Object key (or relative path) of a host's summary of one agency."""
    return f"{agency_prefix}/{FLEET_DIR}/{host}.json"


class MalformedSummary(ValueError):
    """A signed report that is not a well-formed fleet summary."""


def _number(value: object, what: str, *, optional: bool = True) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise MalformedSummary(f"{what} is not a number")
    return float(value)


def _level(value: object, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 6:
        raise MalformedSummary(f"{what} is not a GB/T 20988 level")
    return value


def _codes(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not all(v in FINDINGS for v in value):
        raise MalformedSummary(f"{what} holds an unknown finding")
    return [str(v) for v in value]


def _offline(value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"met", "verified_media",
                                                      *_OFFLINE_NUMBERS}:
        raise MalformedSummary("offline_copy is not an offline-copy record")
    media = value["verified_media"]
    if not isinstance(value["met"], bool) or isinstance(media, bool) \
            or not isinstance(media, int) or media < 0:
        raise MalformedSummary("offline_copy is not an offline-copy record")
    return {"met": value["met"], "verified_media": media,
            **{k: _number(value[k], f"offline_copy.{k}") for k in _OFFLINE_NUMBERS}}


def _history(value: object, published_at: float) -> SourceHistory | None:
    try:
        return parse_history(value, published_at)
    except MalformedHistory as exc:
        raise MalformedSummary(str(exc)) from None


def _limit(value: object) -> float | None:
    limit = _number(value, "verify_max_age_seconds")
    if limit is not None and not 0 < limit <= 10 * 366 * 86400:
        raise MalformedSummary("verify_max_age_seconds is not a duration")
    return limit


def parse_summary(report: dict[str, Any]) -> AgencySummary:
    """The summary in a verified report; every id checked (it came from a store).

    Raises MalformedSummary."""
    if report.get("format") != FORMAT:
        raise MalformedSummary(f"not a {FORMAT} report")
    host, agency = report.get("host"), report.get("agency")
    if not is_host_name(host) or not is_identifier(agency):
        raise MalformedSummary("host or agency is not a valid id")
    assert isinstance(host, str) and isinstance(agency, str)
    sequence = report.get("sequence")
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 0:
        raise MalformedSummary("sequence is not a counter")
    verdict = report.get("verdict")
    if verdict not in VERDICTS:
        raise MalformedSummary("unknown verdict")
    version = report.get("drbackup_version")
    if not isinstance(version, str) or len(version) > 40:
        raise MalformedSummary("drbackup_version is not a version")
    published_at = _number(report.get("published_at"), "published_at", optional=False) or 0.0
    sources: list[SourceStatus] = []
    raw_sources = report.get("sources") or []
    if not isinstance(raw_sources, list):
        raise MalformedSummary("sources is not a list of sources")
    for raw in raw_sources:
        if not isinstance(raw, dict) or not is_identifier(raw.get("source")) \
                or not is_identifier(raw.get("kind")):
            raise MalformedSummary("a source is not a valid id")
        sources.append(SourceStatus(
            source=raw["source"], kind=raw["kind"],
            last_good_backup_at=_number(raw.get("last_good_backup_at"), "last_good_backup_at"),
            rpo_seconds=_number(raw.get("rpo_seconds"), "rpo_seconds"),
            rpo_target_seconds=_number(raw.get("rpo_target_seconds"), "rpo target",
                                       optional=False) or 0.0,
            last_good_drill_at=_number(raw.get("last_good_drill_at"), "last_good_drill_at"),
            rto_estimate_seconds=_number(raw.get("rto_estimate_seconds"), "rto estimate"),
            rto_target_seconds=_number(raw.get("rto_target_seconds"), "rto target",
                                       optional=False) or 0.0,
            level_met=_level(raw.get("level_met"), "source level"),
            findings=_codes(raw.get("findings", []), "source findings"),
            history=_history(raw.get("history"), published_at)))
    replicas: list[ReplicaStatus] = []
    for raw in report.get("replicas") or []:
        if not isinstance(raw, dict) or not is_identifier(raw.get("store")):
            raise MalformedSummary("a replica is not a valid store id")
        replicas.append(ReplicaStatus(raw["store"], _number(raw.get("lag_seconds"), "lag")))
    frozen = report.get("guard_frozen")
    if frozen is not None and not isinstance(frozen, bool):
        raise MalformedSummary("guard_frozen is not a flag")
    offline = _offline(report.get("offline_copy"))
    return AgencySummary(
        host=host, agency=agency, sequence=sequence,
        published_at=published_at,
        valid_seconds=_number(report.get("valid_seconds"), "valid_seconds",
                              optional=False) or 0.0,
        drbackup_version=version, verdict=str(verdict),
        level_met=_level(report.get("level_met"), "level_met"),
        level_required=_level(report.get("level_required"), "level_required"),
        sources=sources, replicas=replicas, guard_frozen=frozen, offline_copy=offline,
        findings=_codes(report.get("findings", []), "findings"),
        verify_max_age_seconds=_limit(report.get("verify_max_age_seconds")))
