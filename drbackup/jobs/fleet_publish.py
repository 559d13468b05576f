"""Publishing this host's signed status summary (#20 item 1): for every agency, the figures of
`drbackup report` (jobs/dr_report.py: last good backup, measured RPO, last good drill and its
RTO estimate, the GB/T 20988 level met, guard freeze, offline copy) plus the replicas' lag,
turned into fixed codes and numbers (drbackup/fleet/summary.py), signed with the host's
evidence key and written to <store>/<agency>/fleet/<host>.json in every store of the agency.

One publication covers every agency of the host under one sequence number, taken from a
per-host counter in the state database that never goes back: max(last + 1, now in ms), so a
state directory rebuilt from scratch still counts on from where its old summaries stopped. A
reader (jobs/fleet_report.py) takes the highest sequence it sees from a host as that host's
present, and any lower one as replayed. So a publication is all or nothing per agency: a
partial one (`--agency`) would make the other agencies' summaries look replayed.

A failed upload is reported and recorded, not raised: the other stores still get theirs."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime

from drbackup import __version__
from drbackup.config.models import AgencyConfig
from drbackup.errors import ConfigError, DrBackupError, ExitCode
from drbackup.fleet.history import (
    SourceHistory,
    drill_points,
    rpo_points,
)
from drbackup.fleet.summary import (
    AgencySummary,
    ReplicaStatus,
    SourceStatus,
    is_host_name,
    summary_key,
    verdict_of,
)
from drbackup.jobs.dr_report import AgencyReport, SourceReport, agency_report, drilled_suspect
from drbackup.jobs.evidence import evidence_key
from drbackup.jobs.replicate import last_replication_status
from drbackup.jobs.runtime import Runtime
from drbackup.state import RunRecord
from drbackup.state import guard as guard_records
from drbackup.store import S3Location

log = logging.getLogger(__name__)
# Rows read per source and publication for the history: a backup every 10 minutes over the
# window and the one before it; beyond, the oldest slices are drawn from fewer backups.
_HISTORY_ROWS = 9000
SEQUENCE_KEY = "fleet:sequence"
LAST_KEY = "fleet:last_publish"


@dataclass(frozen=True)
class Upload:
    store: str
    key: str | None  # object key or file path; None when the upload failed
    error: str | None = None
    exit_code: int | None = None


@dataclass(frozen=True)
class PublishedAgency:
    agency: str
    verdict: str
    level_met: int | None
    level_required: int | None
    findings: list[str]
    uploads: list[Upload]


@dataclass(frozen=True)
class PublishOutcome:
    host: str
    key_id: str
    sequence: int
    published_at: float
    valid_seconds: float
    agencies: list[PublishedAgency] = field(default_factory=list)
    skipped: str | None = None  # why nothing was published (no verdict changed)

    @property
    def failed(self) -> list[Upload]:
        return [u for a in self.agencies for u in a.uploads if u.key is None]


def fleet_host(rt: Runtime) -> str:
    """The host name summaries carry (and their object keys). Raises ConfigError."""
    host = rt.hostname.lower()
    if not is_host_name(host):
        raise ConfigError(f"host name {rt.hostname!r} cannot name a fleet summary",
                          "set daemon.hostname to a DNS-style name (letters, digits, '.', "
                          "'-', '_')")
    return host


def _at(text: str | None) -> float | None:
    if text is None:
        return None
    return datetime.fromisoformat(text).timestamp()


def _source_codes(source: SourceReport) -> list[str]:
    codes: list[str] = []
    if source.last_good_backup is None:
        codes.append("no-good-backup")
    elif source.rpo.met is False:
        codes.append("rpo-breached")
    drill = source.last_drill
    if drill is None:
        codes.append("never-drilled")
    elif drill.verdict not in ("pass", "warning"):
        codes.append("drill-failed")
    elif source.last_good_drill is None or source.last_good_drill.run_id != drill.run_id:
        # A passed drill that dr_report does not count as good restored a suspect snapshot.
        codes.append("drill-suspect")
    if source.rto.met is False:
        codes.append("rto-over")
    return codes


def _drill_code(rt: Runtime, agency: AgencyConfig, run: RunRecord) -> str:
    if run.details.get("verdict") not in ("pass", "warning"):
        return "failed"
    return "suspect" if drilled_suspect(rt, agency.id, run) is not None else "ok"


def _rto(run: RunRecord) -> float | None:
    value = run.details.get("rto_estimate_seconds")
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e9:
        return None  # not a figure drbackup records: leave it out rather than be malformed
    return float(value)


def source_history(rt: Runtime, agency: AgencyConfig, source: str, now: float,
                   last_good_backup_at: float | None = None) -> SourceHistory:
    """The source's bounded history (fleet/history.py) from the state database: its good
    backups since two windows back (the one before the window opens its first gap; so does
    `last_good_backup_at`, dr_report's, when it is older still) and its finished drills in
    the window."""
    window = rt.config.fleet.history_window.total_seconds()
    backups = rt.state.runs(agency=agency.id, source=source, job="backup",
                            results=("success", "warning"), since=now - 2 * window,
                            limit=_HISTORY_ROWS)
    times = [r.finished_at or r.started_at for r in backups if r.snapshot_id]
    if last_good_backup_at is not None:
        times.append(last_good_backup_at)  # a duplicate adds a gap of 0: harmless
    drills = [r for r in rt.state.runs(agency=agency.id, source=source, job="drill",
                                       since=now - window, limit=200)
              if r.result != "running"]
    return SourceHistory(window, rpo_points(times, now, window), drill_points(
        [(r.finished_at or r.started_at, _drill_code(rt, agency, r), _rto(r)) for r in drills]))


def _source_status(rt: Runtime, agency: AgencyConfig, source: SourceReport, now: float,
                   history: bool) -> SourceStatus:
    last_good = _at(source.last_good_backup.at if source.last_good_backup else None)
    return SourceStatus(
        source=source.source, kind=source.kind, last_good_backup_at=last_good,
        rpo_seconds=source.rpo.measured_seconds, rpo_target_seconds=source.rpo.target_seconds,
        last_good_drill_at=_at(source.last_good_drill.at if source.last_good_drill else None),
        rto_estimate_seconds=source.rto.measured_seconds,
        rto_target_seconds=source.rto.target_seconds, level_met=source.gbt_20988.level,
        findings=_source_codes(source),
        history=source_history(rt, agency, source.source, now, last_good) if history else None)


def _offline(report: AgencyReport, agency: AgencyConfig) -> dict[str, object] | None:
    offline = report.offline_copy
    if agency.offline is None or offline is None:
        return None
    return {"met": offline.met, "verified_media": offline.verified_media,
            "newest_snapshot_at": _at(offline.newest_snapshot_time),
            "age_seconds": offline.age_seconds, "max_age_seconds": offline.max_age_seconds}


def build_summary(rt: Runtime, agency: AgencyConfig, *, host: str, sequence: int, now: float,
                  history: bool = True) -> AgencySummary:
    """One agency's summary from the state database (no restic, no network); without
    `history` its sources carry none (the verdict-change test needs only the codes, and runs
    after every job)."""
    report = agency_report(rt, agency, now)
    sources = [_source_status(rt, agency, s, now, history) for s in report.sources]
    findings = sorted({c for s in sources for c in s.findings})
    if report.maintains_here:
        check = report.last_check
        if check is None:
            findings.append("never-checked")
        elif check.verdict != "pass":
            findings.append("check-failed")
    frozen = guard_records.open_freeze(rt.state, agency.id) is not None
    if frozen:
        findings.append("guard-frozen")
    replicas = []
    for replica in agency.replicas:
        status = last_replication_status(rt.state, agency.id, replica)
        lag = None if status is None else round(status.lag_at(now), 1)
        replicas.append(ReplicaStatus(replica, lag))
        if lag is None or lag > agency.rpo.total_seconds():
            findings.append("replica-lagging")
    findings = sorted(set(findings))
    level = report.gbt_20988.level
    return AgencySummary(
        host=host, agency=agency.id, sequence=sequence, published_at=now,
        valid_seconds=rt.config.fleet.valid_for.total_seconds(), drbackup_version=__version__,
        verdict=verdict_of(findings, level, agency.required_level), level_met=level,
        level_required=agency.required_level, sources=sources, replicas=replicas,
        guard_frozen=frozen if agency.guard.enabled else None,
        offline_copy=_offline(report, agency), findings=findings,
        verify_max_age_seconds=agency.verify_max_age.total_seconds())


def status_digest(summary: AgencySummary) -> str:
    """What a change of which triggers a publication: verdict, level and findings."""
    return f"{summary.verdict}/{summary.level_met}/{','.join(summary.findings)}"


def _upload(rt: Runtime, agency: AgencyConfig, store_name: str, host: str, body: bytes
            ) -> Upload:
    store = rt.store_config(store_name)
    try:
        if store.url is not None:
            s3 = rt.s3_store(store_name)
            assert s3 is not None
            prefix = S3Location.parse(store.url).child(agency.id).prefix
            key = summary_key(prefix, host)
            s3.put_bytes(key, body)
            return Upload(store_name, key)
        assert store.path is not None
        path = store.path / summary_key(agency.id, host)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(body)
        os.replace(tmp, path)
        return Upload(store_name, str(path))
    except DrBackupError as exc:
        return Upload(store_name, None, exc.one_line(), int(exc.exit_code))
    except OSError as exc:
        return Upload(store_name, None, f"{exc.__class__.__name__}: {exc.strerror or exc}",
                      int(ExitCode.STORE_ACCESS))


def verdicts_changed(rt: Runtime, now: float | None = None) -> bool:
    """Whether any agency's verdict, level or findings differ from the last publication."""
    moment = time.time() if now is None else now
    last = rt.state.get_json_object(LAST_KEY) or {}
    digests = last.get("digests")
    if not isinstance(digests, dict) or set(digests) != {a.id for a in rt.config.agencies} \
            or last.get("failed_uploads"):
        return True  # never published, agencies changed, or a store missed the last one
    host = fleet_host(rt)
    return any(status_digest(build_summary(rt, a, host=host, sequence=0, now=moment,
                                           history=False))
               != digests.get(a.id) for a in rt.config.agencies)


def publish_fleet(rt: Runtime, *, now: float | None = None, only_if_changed: bool = False
                  ) -> PublishOutcome:
    """Sign and upload every agency's summary under one new sequence number.

    Raises ConfigError (host name), StateError (key, counter); upload failures are in the
    outcome."""
    host = fleet_host(rt)
    key = evidence_key(rt)
    moment = time.time() if now is None else now
    valid = rt.config.fleet.valid_for.total_seconds()
    if only_if_changed and not verdicts_changed(rt, moment):
        return PublishOutcome(host, key.key_id, 0, moment, valid, skipped="no verdict changed")
    sequence = rt.state.increment_value(SEQUENCE_KEY, floor=int(moment * 1000))
    published: list[PublishedAgency] = []
    digests: dict[str, str] = {}
    for agency in rt.config.agencies:
        summary = build_summary(rt, agency, host=host, sequence=sequence, now=moment)
        # Compact: the signature covers the canonical form, not this text's spacing.
        body = (json.dumps(key.sign(summary.to_report()), sort_keys=True, ensure_ascii=False,
                           allow_nan=False, separators=(",", ":")) + "\n").encode()
        uploads = [_upload(rt, agency, store, host, body)
                   for store in (agency.store, *agency.replicas)]
        for upload in uploads:
            if upload.key is None:
                log.warning("fleet summary of %s not written to store %s: %s", agency.id,
                            upload.store, upload.error, extra={"agency": agency.id,
                                                               "store": upload.store})
        digests[agency.id] = status_digest(summary)
        published.append(PublishedAgency(agency.id, summary.verdict, summary.level_met,
                                         summary.level_required, summary.findings, uploads))
    outcome = PublishOutcome(host, key.key_id, sequence, moment, valid, published)
    rt.state.set_value(LAST_KEY, json.dumps({
        "sequence": sequence, "published_at": moment, "digests": digests,
        "failed_uploads": len(outcome.failed)}, sort_keys=True))
    log.info("fleet summary %d published: %d agencies, %d failed upload(s)", sequence,
             len(published), len(outcome.failed), extra={"event": "fleet_published"})
    return outcome
