"""Restore drills: prove a source can be restored, and measure how long it takes.

File drill (directory sources): take the latest snapshot; restore all of it when it holds at
most verify.drill_max_bytes, else a sample of verify.drill_sample_files files (the largest and
newest plus a random choice), into scratch space under the state directory; then compare each
restored file:
- with the live source file by SHA-256 when the source is unchanged since the snapshot (same
  size and mtime): a difference is a mismatch, and fails the drill with the file named;
- with the size recorded in the snapshot otherwise (the source moved on; not a mismatch).
Missing and unreadable restored files fail the drill too. Every drill records restore bytes,
seconds and throughput, estimates the full-restore time (restore size / throughput) and compares
it with the agency's RTO: an estimate over target is a finding (verdict "warning").

Every drill is a run of job "drill" in state with a signed evidence report; its scratch space
is removed whatever happens (and a killed drill's leftovers at the next start).
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from drbackup.config.models import AgencyConfig, DirectorySource, Source
from drbackup.engine import LsNode, ResticError, Snapshot
from drbackup.errors import DrBackupError, NotFoundError, VerifyFailedError
from drbackup.jobs.evidence import PublishedReport, publish_report, report_name, utc_iso
from drbackup.jobs.runtime import Runtime
from drbackup.jobs.snapshot_catalogue import repository_snapshots
from drbackup.jobs.tags import source_filter
from drbackup.verify.scratch import clean_stale_scratch as _clean_scratch_dirs
from drbackup.verify.scratch import scratch_space

log = logging.getLogger(__name__)
MAX_REPORTED_FILES = 500
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Hooks other drill kinds register to clean their own leftovers (e.g. scratch databases).
STALE_CLEANERS: list[Callable[[Runtime], None]] = []


def clean_stale_scratch(rt: Runtime) -> list[Path]:
    """Remove what killed drills left behind: scratch directories nobody holds, and whatever
    the registered cleaners find. The daemon calls this at start; every verify run too."""
    _register_kinds()
    removed = _clean_scratch_dirs(rt.config.daemon.state_dir)
    for cleaner in STALE_CLEANERS:
        try:
            cleaner(rt)
        except DrBackupError as exc:
            log.warning("cleaning drill leftovers: %s", exc.one_line())
    return removed


@dataclass(frozen=True)
class FileCheck:
    path: str
    size: int
    comparison: str  # "hash" (source unchanged) | "size" (source changed or gone) | "none"
    result: str  # "ok" | "mismatch" | "missing" | "unreadable"
    sha256: str | None = None
    expected_sha256: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class DrillCounts:
    files_in_snapshot: int = 0
    files_checked: int = 0
    hash_compared: int = 0
    size_compared: int = 0
    source_changed: int = 0
    ok: int = 0
    missing: int = 0
    mismatched: int = 0
    unreadable: int = 0


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
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.verdict != "fail"


# -- sampling and comparing ------------------------------------------------------------------


def choose_sample(files: list[LsNode], count: int, rng: random.Random) -> list[LsNode]:
    """`count` files: a quarter the largest, a quarter the newest, the rest at random."""
    if len(files) <= count:
        return list(files)
    chosen: dict[str, LsNode] = {}
    quarter = max(1, math.ceil(count / 4))
    for node in sorted(files, key=lambda n: (-n.size, n.path))[:quarter]:
        chosen[node.path] = node
    newest = sorted(files, key=lambda n: (n.mtime or _EPOCH, n.path), reverse=True)
    for node in newest:
        if len(chosen) >= 2 * quarter or len(chosen) >= count:
            break
        chosen.setdefault(node.path, node)
    rest = [n for n in files if n.path not in chosen]
    rng.shuffle(rest)
    for node in rest[:count - len(chosen)]:
        chosen[node.path] = node
    return sorted(chosen.values(), key=lambda n: n.path)


def include_pattern(path: str) -> str:
    """restic --include takes glob patterns: escape the glob characters of a literal path."""
    out = []
    for char in path:
        if char in "*?[]\\":
            out.append("\\")
        out.append(char)
    return "".join(out)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def _micros(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(microseconds=1)


def source_unchanged(node: LsNode) -> bool:
    """The live file has the size and mtime (to the microsecond) recorded in the snapshot."""
    live = Path(node.path)
    try:
        stat = live.lstat()
    except OSError:
        return False
    if not live.is_file() or live.is_symlink() or node.mtime is None:
        return False
    return stat.st_size == node.size and stat.st_mtime_ns // 1000 == _micros(node.mtime)


def compare_file(node: LsNode, restored_root: Path) -> FileCheck:
    restored = restored_root / node.path.lstrip("/")
    if not restored.is_file():
        return FileCheck(node.path, node.size, "none", "missing",
                         detail="not restored")
    unchanged = source_unchanged(node)
    try:
        restored_sha = sha256_file(restored)
        restored_size = restored.stat().st_size
    except OSError as exc:
        return FileCheck(node.path, node.size, "hash" if unchanged else "size", "unreadable",
                         detail=f"restored copy unreadable: {exc.strerror or exc}")
    if unchanged:
        try:
            live_sha = sha256_file(Path(node.path))
        except OSError:
            unchanged = False
        else:
            if live_sha == restored_sha and restored_size == node.size:
                return FileCheck(node.path, node.size, "hash", "ok", restored_sha, live_sha)
            return FileCheck(node.path, node.size, "hash", "mismatch", restored_sha, live_sha,
                             detail="restored content differs from the unchanged source file")
    if restored_size != node.size:
        return FileCheck(node.path, node.size, "size", "mismatch", restored_sha,
                         detail=f"restored {restored_size} bytes, snapshot says {node.size}")
    return FileCheck(node.path, node.size, "size", "ok", restored_sha)


def _with_restic_error(check: FileCheck, errors: list[str]) -> FileCheck:
    """Name restic's own error for a file that did not come back intact."""
    if check.result == "ok":
        return check
    for error in errors:
        if error.startswith(f"{check.path}:"):
            reason = error[len(check.path) + 1:].strip()
            return FileCheck(check.path, check.size, check.comparison, check.result,
                             check.sha256, check.expected_sha256,
                             f"{check.detail}; restic: {reason}")
    return check


def count_checks(files_in_snapshot: int, checks: list[FileCheck]) -> DrillCounts:
    return DrillCounts(
        files_in_snapshot=files_in_snapshot,
        files_checked=len(checks),
        hash_compared=sum(1 for c in checks if c.comparison == "hash"),
        size_compared=sum(1 for c in checks if c.comparison == "size"),
        source_changed=sum(1 for c in checks if c.comparison == "size"),
        ok=sum(1 for c in checks if c.result == "ok"),
        missing=sum(1 for c in checks if c.result == "missing"),
        mismatched=sum(1 for c in checks if c.result == "mismatch"),
        unreadable=sum(1 for c in checks if c.result == "unreadable"),
    )


# -- the run around every drill kind ---------------------------------------------------------


@dataclass
class DrillRecord:
    """What a drill kind fills in while it runs; turned into report, run details, outcome."""

    kind: str
    reasons: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    snapshot: Snapshot | None = None
    timing: RestoreTiming | None = None
    report: dict[str, Any] = field(default_factory=dict)  # kind-specific report fields
    details: dict[str, Any] = field(default_factory=dict)  # kind-specific run details

    def fail(self, reason: str) -> None:
        self.reasons.append(reason)
        self.findings.append(reason)


def _is_data_failure(exc: DrBackupError) -> bool:
    """A plain ResticError (restic ran and failed) says the data could not be restored; its
    subclasses (unreachable, locked, wrong password, timeout...) say nothing about the data."""
    return type(exc) is ResticError


@contextmanager
def drill_run(rt: Runtime, agency: AgencyConfig, source: Source, kind: str, trigger: str,
              outcome_box: list[DrillOutcome]) -> Iterator[DrillRecord]:
    """Record a drill: start the run, let the body fill a DrillRecord, then sign and publish
    the report and finish the run. Environmental failures (store unreachable, locked...) are
    recorded as failed runs and re-raised; restore failures become a "fail" verdict."""
    run_id = rt.state.start_run("drill", agency.id, source=source.id, store=agency.store,
                                trigger=trigger)
    fields = {"agency": agency.id, "source": source.id, "job": "drill", "run_id": str(run_id)}
    log.info("%s drill started", kind, extra=fields)
    started_wall = time.time()
    record = DrillRecord(kind)
    record.details["run_id"] = run_id
    try:
        yield record
    except DrBackupError as exc:
        if not _is_data_failure(exc):
            rt.state.finish_run(run_id, "failed", error=exc.one_line(),
                                details={"kind": kind, "verdict": "error"})
            raise
        record.fail(f"restore failed: {exc.message}")
    except BaseException as exc:
        rt.state.abort_run(run_id, exc, details={"kind": kind, "verdict": "error"})
        raise
    timing = record.timing
    if not record.reasons and timing is not None and not timing.rto_met:
        record.findings.append(
            f"estimated full restore {timing.rto_estimate_seconds:.0f}s exceeds the RTO "
            f"{timing.rto_target_seconds:.0f}s")
    verdict = "fail" if record.reasons else ("warning" if record.findings else "pass")
    snapshot = record.snapshot
    report: dict[str, Any] = {
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
        rt.state.finish_run(run_id, "failed", error=f"evidence not written: {exc.one_line()}",
                            details={"kind": kind, "verdict": "error"})
        raise
    details: dict[str, Any] = {
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
        **{k: v for k, v in record.details.items() if k != "run_id"},
    }
    result = {"pass": "success", "warning": "warning", "fail": "failed"}[verdict]
    rt.state.finish_run(run_id, result, details=details,
                        error="; ".join(record.reasons[:3]) or None)
    log.info("%s drill %s", kind, verdict, extra=fields)
    outcome_box.append(DrillOutcome(
        run_id, agency.id, source.id, kind, verdict,
        None if snapshot is None else snapshot.id, timing, record.reasons, record.findings,
        published, {**record.report}))


def latest_snapshot(rt: Runtime, agency: AgencyConfig, source: Source) -> Snapshot | None:
    snapshots = repository_snapshots(rt, agency, agency.store,
                                     tags=source_filter(agency.id, source.id))
    return snapshots[-1] if snapshots else None


# -- file drills -----------------------------------------------------------------------------


def run_file_drill(rt: Runtime, agency: AgencyConfig, source: DirectorySource, *,
                   trigger: str = "cli", rng: random.Random | None = None) -> DrillOutcome:
    """Restore-drill one directory source (see the module doc). A drill that finds damage
    returns verdict "fail"; failures to reach the repository raise their DrBackupError."""
    rng = rng or random.SystemRandom()
    box: list[DrillOutcome] = []
    rt.restic.require_supported()
    rt.check_store(agency.store)
    with drill_run(rt, agency, source, "files", trigger, box) as record:
        _file_drill_body(rt, agency, source, record, rng)
    return box[0]


def _file_drill_body(rt: Runtime, agency: AgencyConfig, source: DirectorySource,
                     record: DrillRecord, rng: random.Random) -> None:
    snapshot = latest_snapshot(rt, agency, source)
    if snapshot is None:
        record.fail(f"source {source.id!r} has no snapshot to restore")
        return
    record.snapshot = snapshot
    target = rt.target(agency)
    files = [n for n in rt.restic.ls(target, snapshot.id) if n.type == "file"]
    restore_size = sum(n.size for n in files)
    settings = agency.verify
    whole = restore_size <= settings.drill_max_bytes
    chosen = files if whole else choose_sample(files, settings.drill_sample_files, rng)
    includes = () if whole else tuple(include_pattern(n.path) for n in chosen)
    with scratch_space(rt.config.daemon.state_dir,
                       f"drill-{record.details['run_id']}") as scratch:
        started = time.monotonic()
        summary = rt.restic.restore(target, snapshot.id, scratch, includes=includes,
                                    tolerate_errors=True)
        seconds = time.monotonic() - started
        restored_bytes = summary.bytes_restored or sum(n.size for n in chosen)
        record.timing = RestoreTiming(restored_bytes, seconds, restore_size,
                                      agency.rto.total_seconds())
        checks = [compare_file(node, scratch) for node in chosen]
    checks = [_with_restic_error(c, summary.errors) for c in checks]
    counts = count_checks(len(files), checks)
    bad = [c for c in checks if c.result != "ok"]
    for check in bad[:20]:
        record.fail(f"{check.result}: {check.path} ({check.detail})")
    if len(bad) > 20:
        record.fail(f"... and {len(bad) - 20} more damaged files")
    for error in summary.errors[:10]:
        record.findings.append(f"restic: {error}")
    if summary.errors and not bad:
        record.fail(f"restic reported {len(summary.errors)} restore error(s)")
    record.report.update({
        "mode": "whole" if whole else "sample",
        "counts": counts.__dict__,
        "files": [c.__dict__ for c in (bad + [c for c in checks if c.result == "ok"])
                  [:MAX_REPORTED_FILES]],
        "restic_errors": summary.errors[:50],
    })
    record.details.update({"mode": "whole" if whole else "sample", **{
        k: v for k, v in counts.__dict__.items()}})


# -- dispatch by source kind -----------------------------------------------------------------

DrillFunction = Callable[[Runtime, AgencyConfig, Any, str], DrillOutcome]
# source kind -> (drill kind, function). Database drills register themselves here.
DRILLS: dict[str, tuple[str, DrillFunction]] = {
    "directory": ("files", lambda rt, agency, source, trigger: run_file_drill(
        rt, agency, source, trigger=trigger)),
}


def _register_kinds() -> None:
    """Database drills live in their own module, which registers itself in DRILLS."""
    import drbackup.jobs.drill_db  # noqa: F401


def drill_kind(source: Source) -> str | None:
    """"files" or "db" for the source's kind; None when no drill exists for it (e.g. a dump
    folder without drill_postgres_dsn or drill_target = "local-instance")."""
    _register_kinds()
    if source.kind == "dumpdir" and not getattr(source, "has_db_drill", False):
        return None
    entry = DRILLS.get(source.kind)
    return entry[0] if entry else None


def drill_source(rt: Runtime, agency: AgencyConfig, source: Source, *,
                 trigger: str = "cli") -> DrillOutcome:
    """Run the drill that fits the source's kind (the daemon's drill job).

    Raises NotFoundError when no drill exists for the kind, and the drill's own errors.
    """
    _register_kinds()
    entry = DRILLS.get(source.kind)
    if entry is None:
        raise NotFoundError(f"no restore drill for {source.kind!r} sources",
                            "drills exist for: " + ", ".join(sorted(DRILLS)))
    return entry[1](rt, agency, source, trigger)


def drill_job(rt: Runtime, agency: AgencyConfig, store_name: str, trigger: str
              ) -> list[DrillOutcome]:
    """The daemon's periodic drill of every source of an agency that has a drill (signature of
    drbackup.daemon.tasks.JobFunction; drills read the primary store, `store_name`).

    Every source is drilled even when one fails; then raises VerifyFailedError naming the
    failed drills, or the first error that stopped a drill from running at all."""
    outcomes: list[DrillOutcome] = []
    first_error: DrBackupError | None = None
    for source in agency.sources:
        if drill_kind(source) is None:
            continue
        try:
            outcomes.append(drill_source(rt, agency, source, trigger=trigger))
        except DrBackupError as exc:
            log.error("drill of %s/%s could not run: %s", agency.id, source.id,
                      exc.one_line(), extra={"agency": agency.id, "source": source.id})
            first_error = first_error or exc
    failed = [o for o in outcomes if not o.passed]
    if failed:
        raise VerifyFailedError(
            f"restore drill failed for {agency.id}: "
            + "; ".join(f"{o.source}: {o.reasons[0] if o.reasons else o.verdict}"
                        for o in failed[:3]),
            "see the signed reports under the state directory's reports/")
    if first_error is not None:
        raise first_error
    return outcomes
