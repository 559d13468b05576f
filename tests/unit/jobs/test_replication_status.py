"""Replication bookkeeping as data: which snapshots a replica lacks, and the lag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from drbackup.engine import Snapshot
from drbackup.jobs.replicate import compare

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def snap(sid: str, hour: int, *, original: str | None = None, tree: str = "") -> Snapshot:
    return Snapshot(id=sid, time=T0 + timedelta(hours=hour), hostname="h", paths=["/p"],
                    tags=[], tree=tree or f"tree-{sid}", original=original)


def test_complete_replica_has_zero_lag() -> None:
    primary = [snap("p1", 0), snap("p2", 1)]
    copies = [snap("c1", 0, original="p1"), snap("c2", 1, original="p2")]
    status = compare("a", "r", primary, copies, measured_at=T0.timestamp() + 99999)
    assert status.complete and status.uncopied == [] and status.lag_seconds == 0


def test_lag_is_age_of_oldest_uncopied() -> None:
    primary = [snap("p3", 5), snap("p1", 0), snap("p2", 2)]
    copies = [snap("c1", 0, original="p1")]
    measured = (T0 + timedelta(hours=10)).timestamp()
    status = compare("a", "r", primary, copies, measured_at=measured)
    assert status.uncopied == ["p2", "p3"]
    assert status.lag_seconds == 8 * 3600
    assert status.lag_at(measured + 60) == 8 * 3600 + 60


def test_copy_of_a_copy_matches_by_original_and_tree_time_fallback() -> None:
    primary = [snap("p1", 0, original="root"), snap("p2", 1, tree="same")]
    copies = [snap("x", 0, original="root"), snap("y", 1, tree="same")]
    assert compare("a", "r", primary, copies, measured_at=0).complete


def test_empty_primary_is_complete() -> None:
    assert compare("a", "r", [], [], measured_at=5).lag_seconds == 0
