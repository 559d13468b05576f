"""File drills (directory sources): prove a directory source can be restored, and measure how
long it takes.

Take the latest snapshot; restore all of it when it holds at most verify.drill_max_bytes, else a
sample of verify.drill_sample_files files (the largest and newest plus a random choice), into
scratch space under the state directory; then compare each restored file:
- with the live source file by SHA-256 when the source is unchanged since the snapshot (same
  size and mtime): a difference is a mismatch, and fails the drill with the file named;
- with the size recorded in the snapshot otherwise (the source moved on; not a mismatch).
Missing and unreadable restored files fail the drill too. Every drill records restore bytes,
seconds and throughput, estimates the full-restore time (restore size / throughput) and compares
it with the agency's RTO: an estimate over target is a finding (verdict "warning").
A snapshot the ransomware guard found suspect restores byte-identically all the same: the drill
says it proves nothing then, in a finding (verdict "warning"; common.mark_suspect).

Every drill is a run of job "drill" in state with a signed evidence report (common.drill_run);
its scratch space is removed whatever happens (and a killed drill's leftovers at the next start).
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from drbackup.config.models import AgencyConfig, DirectorySource, Source
from drbackup.engine import LsNode
from drbackup.jobs.drills.common import (
    DrillOutcome,
    DrillRecord,
    RestoreTiming,
    latest_snapshot,
    run_drill,
)
from drbackup.jobs.runtime import Runtime
from drbackup.verify.scratch import scratch_space

MAX_REPORTED_FILES = 500
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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


# -- file drills -----------------------------------------------------------------------------


def run_file_drill(rt: Runtime, agency: AgencyConfig, source: DirectorySource, *,
                   trigger: str = "cli", rng: random.Random | None = None) -> DrillOutcome:
    """Restore-drill one directory source (see the module doc). A drill that finds damage
    returns verdict "fail"; failures to reach the repository raise their DrBackupError."""
    chosen = rng or random.SystemRandom()
    return run_drill(rt, agency, source, "files", trigger,
                     lambda record: _file_drill_body(rt, agency, source, record, chosen))


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
    with scratch_space(rt.config.daemon.state_dir, f"drill-{record.run_id}") as scratch:
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


def drill_directory(rt: Runtime, agency: AgencyConfig, source: Source, trigger: str
                    ) -> DrillOutcome:
    """The table's entry for directory sources (common.DrillFunction)."""
    if not isinstance(source, DirectorySource):
        raise TypeError(f"a file drill needs a directory source, not {source.kind!r}")
    return run_file_drill(rt, agency, source, trigger=trigger)
