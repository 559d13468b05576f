"""What every restore drill shares: the run around it (a run of job "drill" in state, a signed
evidence report, the verdict), its result types, the RTO estimate, and the scratch databases'
notes that let a killed drill's leftovers be found at the next start.

Every drill kind (files.py, postgres.py, mysql.py, sqlite.py) imports this module; this module
imports none of them. The table of kinds is drbackup/jobs/drills/__init__.py.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from drbackup.config.models import AgencyConfig, Source
from drbackup.engine import ResticError, Snapshot
from drbackup.errors import DrBackupError
from drbackup.jobs.evidence import PublishedReport, publish_report, report_name, utc_iso
from drbackup.jobs.recording import recorded_run
from drbackup.jobs.restore import guard_verdict
from drbackup.jobs.runtime import Runtime
from drbackup.jobs.snapshot_catalogue import repository_snapshots
from drbackup.jobs.tags import source_filter

log = logging.getLogger(__name__)
PENDING_DIR = "scratch-db"

# A drill kind's fields of the report, run details and dump entries: JSON values.
Fields = dict[str, object]


@dataclass(frozen=True)
class RestoreTiming:
    bytes: int
    seconds: float
    restore_size: int  # bytes a full restore of the snapshot would write
    rto_target_seconds: float

    @property
    def throughput(self) -> float | None:
        """Bytes per second; None when nothing was restored."""
        return self.bytes / self.seconds if self.bytes > 0 and self.seconds > 0 else None

    @property
    def rto_estimate_seconds(self) -> float:
        """Estimated full-restore time: restore size / measured throughput (the restore time
        itself when the drill moved no bytes to measure with)."""
        throughput = self.throughput
        if throughput is None:
            return self.seconds
        return self.restore_size / throughput

    @property
    def rto_met(self) -> bool:
        return self.rto_estimate_seconds <= self.rto_target_seconds


@dataclass(frozen=True)
class DrillOutcome:
    run_id: int
    agency: str
    source: str
    kind: str  # "files" | "db"
    verdict: str  # "pass" | "warning" (restorable, but a finding such as RTO) | "fail"
    snapshot_id: str | None
    timing: RestoreTiming | None
    reasons: list[str]  # why the drill failed
    findings: list[str]  # everything worth an operator's attention, failures included
    report: PublishedReport
    extra: Fields = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.verdict != "fail"


class DrillFunction(Protocol):
    """A drill kind's entry in the table of drbackup/jobs/drills/__init__.py."""

    def __call__(self, rt: Runtime, agency: AgencyConfig, source: Source, trigger: str
                 ) -> DrillOutcome: ...


# -- the run around every drill kind ---------------------------------------------------------


@dataclass
class DrillRecord:
    """What a drill kind fills in while it runs; turned into report, run details, outcome."""

    kind: str
    reasons: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    snapshot: Snapshot | None = None
    timing: RestoreTiming | None = None
    report: Fields = field(default_factory=dict)  # kind-specific report fields
    details: Fields = field(default_factory=dict)  # kind-specific run details
    run_id: int = 0  # the drill's run in state (set by drill_run)
    outcome: DrillOutcome | None = None  # set by drill_run once the run is recorded

    def fail(self, reason: str) -> None:
        self.reasons.append(reason)
        self.findings.append(reason)


def mark_suspect(rt: Runtime, agency: AgencyConfig, record: DrillRecord) -> None:
    """A drill of a snapshot the ransomware guard found suspect (and nobody released as a
    false alarm) proves restic gives back what was backed up, not that it is the agency's data:
    the drill says so in a finding, which makes its verdict "warning" (not "fail": the restore
    worked, the store is sound, and the guard has already raised the alarm), and its report
    and run details carry the guard's verdict. `drbackup report` does not count such a drill
    as a good one while the verdict stands (jobs/dr_report.py)."""
    snapshot = record.snapshot
    verdict = None if snapshot is None else guard_verdict(rt, agency.id, snapshot)
    if snapshot is None or verdict is None or not verdict.suspect:
        return
    record.findings.insert(0, (
        f"snapshot {snapshot.short_id} is suspect (ransomware guard): a byte-identical "
        "restore of it is not a proof of recoverability"))
    guard: Fields = {"verdict": "suspect", "snapshot_id": verdict.snapshot_id,
                     "reasons": verdict.reasons[:10]}
    record.report["guard"] = guard
    record.details["guard"] = guard


def _is_data_failure(exc: DrBackupError) -> bool:
    """A plain ResticError (restic ran and failed) says the data could not be restored; its
    subclasses (unreachable, locked, wrong password, timeout...) say nothing about the data."""
    return type(exc) is ResticError


def run_drill(rt: Runtime, agency: AgencyConfig, source: Source, kind: str, trigger: str,
              body: Callable[[DrillRecord], None]) -> DrillOutcome:
    """The store reached first (its failure is no drill), then `body` fills the record inside
    `drill_run`, which publishes the report and records the run."""
    rt.restic.require_supported()
    rt.check_store(agency.store)
    with drill_run(rt, agency, source, kind, trigger) as record:
        body(record)
    assert record.outcome is not None
    return record.outcome


@contextmanager
def drill_run(rt: Runtime, agency: AgencyConfig, source: Source, kind: str, trigger: str
              ) -> Iterator[DrillRecord]:
    """Record a drill (through jobs/recording.py, like every job): let the body fill a
    DrillRecord, then sign and publish the report and finish the run; the outcome is left in
    `record.outcome`. Environmental failures (store unreachable, locked...) are recorded as
    failed runs and re-raised; restore failures become a "fail" verdict."""
    with recorded_run(rt, "drill", agency.id, source=source.id, store=agency.store,
                      trigger=trigger,
                      failure_details=lambda: {"kind": kind, "verdict": "error"}) as run:
        run_id = run.run_id
        fields = run.fields
        log.info("%s drill started", kind, extra=fields)
        started_wall = time.time()
        record = DrillRecord(kind, run_id=run_id)
        try:
            yield record
        except DrBackupError as exc:
            if not _is_data_failure(exc):
                raise
            record.fail(f"restore failed: {exc.message}")
        mark_suspect(rt, agency, record)
        timing = record.timing
        if not record.reasons and timing is not None and not timing.rto_met:
            record.findings.append(
                f"estimated full restore {timing.rto_estimate_seconds:.0f}s exceeds the RTO "
                f"{timing.rto_target_seconds:.0f}s")
        verdict = "fail" if record.reasons else ("warning" if record.findings else "pass")
        snapshot = record.snapshot
        report: Fields = {
            "kind": "drill",
            "drill_kind": kind,
            "agency": agency.id,
            "source": source.id,
            "source_kind": source.kind,
            "store": agency.store,
            "host": rt.hostname,
            "run_id": run_id,
            "trigger": trigger,
            "started_at": utc_iso(started_wall),
            "finished_at": utc_iso(time.time()),
            "snapshot": None if snapshot is None else {
                "id": snapshot.id, "time": snapshot.time.isoformat(), "paths": snapshot.paths,
                "tags": snapshot.tags, "hostname": snapshot.hostname},
            "restic_version": str(rt.restic.version()),
            "restore": None if timing is None else {
                "bytes": timing.bytes, "seconds": round(timing.seconds, 3),
                "throughput_bytes_per_second": (None if timing.throughput is None
                                                else round(timing.throughput, 1)),
                "restore_size_bytes": timing.restore_size},
            "rto": None if timing is None else {
                "estimate_seconds": round(timing.rto_estimate_seconds, 3),
                "target_seconds": timing.rto_target_seconds, "met": timing.rto_met},
            **record.report,
            "reasons": record.reasons,
            "findings": record.findings,
            "verdict": verdict,
        }
        name = report_name(f"drill-{kind}", source.id, run_id, started_wall)
        try:
            published = publish_report(rt, agency, name, report)
        except DrBackupError as exc:
            run.finish("failed", error=f"evidence not written: {exc.one_line()}",
                       details={"kind": kind, "verdict": "error"})
            raise
        details: Fields = {
            "kind": kind, "verdict": verdict,
            "snapshot_id": None if snapshot is None else snapshot.id,
            "bytes": None if timing is None else timing.bytes,
            "seconds": None if timing is None else round(timing.seconds, 3),
            "throughput": None if timing is None or timing.throughput is None
            else round(timing.throughput, 1),
            "restore_size": None if timing is None else timing.restore_size,
            "rto_estimate_seconds": None if timing is None
            else round(timing.rto_estimate_seconds, 3),
            "rto_target_seconds": agency.rto.total_seconds(),
            "reasons": record.reasons[:20], "findings": record.findings[:20],
            "report_path": str(published.path), "report_key": published.store_key,
            "report_key_id": published.key_id, "upload_error": published.upload_error,
            **record.details,
        }
        result = {"pass": "success", "warning": "warning", "fail": "failed"}[verdict]
        run.finish(result, details=details, error="; ".join(record.reasons[:3]) or None)
        log.info("%s drill %s", kind, verdict, extra=fields)
        record.outcome = DrillOutcome(
            run_id, agency.id, source.id, kind, verdict,
            None if snapshot is None else snapshot.id, timing, record.reasons, record.findings,
            published, {**record.report})



def latest_snapshot(rt: Runtime, agency: AgencyConfig, source: Source) -> Snapshot | None:
    snapshots = repository_snapshots(rt, agency, agency.store,
                                     tags=source_filter(agency.id, source.id))
    return snapshots[-1] if snapshots else None


# -- scratch databases -----------------------------------------------------------------------

# Drops one scratch database a killed drill left, given its source and its note.
ScratchDropper = Callable[[Source, Mapping[str, object]], None]


def scratch_database_name(run_id: int, index: int) -> str:
    """Unique across hosts and state directories sharing a database server: run ids are not."""
    return f"drbackup_drill_{run_id}_{index}_{secrets.token_hex(4)}"


@contextmanager
def pending_database(rt: Runtime, agency: AgencyConfig, source_id: str, name: str,
                     admin_dsn: str) -> Iterator[None]:
    """Note the scratch database under <state_dir>/scratch-db/ (locked while this drill lives)
    so a killed drill's database is found and dropped at the next start."""
    directory = rt.config.daemon.state_dir / PENDING_DIR
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"{name}.json"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, json.dumps({"agency": agency.id, "source": source_id, "database": name,
                                 "admin_dsn": admin_dsn}).encode())
        yield
        path.unlink(missing_ok=True)
    finally:
        os.close(fd)


def clean_stale_databases(rt: Runtime, droppers: Mapping[str, ScratchDropper]) -> list[str]:
    """Drop scratch databases of drills that were killed, each with the dropper of its
    source's kind (`droppers`: the table in drbackup/jobs/drills/__init__.py); returns their
    names."""
    directory = rt.config.daemon.state_dir / PENDING_DIR
    if not directory.is_dir():
        return []
    dropped: list[str] = []
    for path in sorted(directory.glob("*.json")):
        fd = os.open(path, os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its drill is still running
            try:
                note: dict[str, object] = json.loads(path.read_text())
                source = rt.config.agency(str(note["agency"])).source(str(note["source"]))
            except (ValueError, KeyError, DrBackupError):
                path.unlink(missing_ok=True)
                continue
            drop = droppers.get(source.kind)
            if drop is not None:
                drop(source, note)
            path.unlink(missing_ok=True)
            dropped.append(str(note["database"]))
            log.warning("dropped leftover drill database %s", note["database"])
        finally:
            os.close(fd)
    return dropped
