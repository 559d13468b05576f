"""The pure parts of restore drills: sampling, restic include escaping, source-unchanged rule,
file comparison and the RTO estimate."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from drbackup.engine import LsNode
from drbackup.jobs.drills.common import DrillRecord, RestoreTiming
from drbackup.jobs.drills.database import dump_does_not_restore
from drbackup.jobs.drills.files import (
    choose_sample,
    compare_file,
    include_pattern,
    source_unchanged,
)
from drbackup.sources.base import DumpError

BASE = datetime(2026, 1, 1, tzinfo=UTC)


def _node(path: str, size: int, minutes: int = 0) -> LsNode:
    return LsNode(path, "file", size, 0o644, BASE + timedelta(minutes=minutes))


def test_sample_holds_the_largest_and_newest_and_has_the_asked_size() -> None:
    files = [_node(f"/d/f{i}", 100 + i, minutes=i) for i in range(100)]
    files.append(_node("/d/huge", 10**9, minutes=-50))
    files.append(_node("/d/newest", 1, minutes=500))
    sample = choose_sample(files, 8, random.Random(1))
    paths = {n.path for n in sample}
    assert len(sample) == 8
    assert {"/d/huge", "/d/newest"} <= paths
    assert choose_sample(files[:5], 8, random.Random(1)) == files[:5]


def test_include_pattern_escapes_glob_characters() -> None:
    assert include_pattern("/d/[odd] name*.txt") == "/d/\\[odd\\] name\\*.txt"
    assert include_pattern("/plain/path") == "/plain/path"


def _snapshot_node(path: Path) -> LsNode:
    info = path.stat()
    mtime = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=info.st_mtime_ns // 1000)
    return LsNode(str(path), "file", info.st_size, 0o644, mtime)


def test_compare_by_hash_when_unchanged_and_by_size_when_changed(tmp_path: Path) -> None:
    live = tmp_path / "live" / "doc.txt"
    live.parent.mkdir()
    live.write_bytes(b"original content")
    node = _snapshot_node(live)
    assert source_unchanged(node)
    restored_root = tmp_path / "restored"
    restored = restored_root / str(live).lstrip("/")
    restored.parent.mkdir(parents=True)
    restored.write_bytes(b"original content")
    assert compare_file(node, restored_root).result == "ok"
    assert compare_file(node, restored_root).comparison == "hash"
    # Same size and mtime, other bytes in the restore: a mismatch.
    restored.write_bytes(b"ORIGINAL CONTENT")
    check = compare_file(node, restored_root)
    assert (check.comparison, check.result) == ("hash", "mismatch")
    # The source moved on: compared with the snapshot's size only.
    live.write_bytes(b"new content, longer than before")
    assert not source_unchanged(node)
    check = compare_file(node, restored_root)
    assert (check.comparison, check.result) == ("size", "ok")
    restored.write_bytes(b"short")
    assert compare_file(node, restored_root).result == "mismatch"
    restored.unlink()
    assert compare_file(node, restored_root).result == "missing"


def test_rto_estimate_scales_throughput_to_the_restore_size() -> None:
    timing = RestoreTiming(bytes=10_000_000, seconds=2.0, restore_size=1_000_000_000,
                           rto_target_seconds=3600)
    assert timing.throughput == 5_000_000
    assert timing.rto_estimate_seconds == 200
    assert timing.rto_met
    slow = RestoreTiming(bytes=1_000, seconds=10.0, restore_size=10**9, rto_target_seconds=3600)
    assert not slow.rto_met
    empty = RestoreTiming(bytes=0, seconds=0.5, restore_size=0, rto_target_seconds=60)
    assert empty.throughput is None and empty.rto_estimate_seconds == 0.5


def test_a_dump_from_a_newer_postgresql_is_not_blamed_on_the_dump() -> None:
    newer = DumpError("pg_restore exited with code 1", stderr_tail=(
        "pg_restore: error: unsupported version (1.16) in file header"))
    damaged = DumpError("pg_restore exited with code 1", stderr_tail=(
        "pg_restore: error: could not read from input file: end of file"))
    reasons = []
    for error in (newer, damaged):
        record, entry = DrillRecord("db"), dict[str, Any]()
        dump_does_not_restore(error, "db permits", entry, record)
        assert entry["verdict"] == "fail"  # not proven restorable either way
        reasons.append(record.reasons[0])
    assert "this host's pg_restore cannot read the dump" in reasons[0]
    assert "newer PostgreSQL" in reasons[0] and "damaged" not in reasons[0]
    assert "the dump does not restore" in reasons[1] and "damaged" in reasons[1]
