"""Store health and back-off against a real moto server that is stopped and started: checks are
recorded in state, an unreachable replica fails fast with a store error (no restic retry loop),
jobs back off exponentially, and replication catches up when the store returns.

The daemon's queue is not part of this branch: this test drives the job functions the way the
daemon will (one Backoff per store), without the daemon process."""

from __future__ import annotations

from pathlib import Path

import pytest

from drbackup.errors import ExitCode
from drbackup.jobs.backoff import Backoff
from drbackup.jobs.backup import run_backup
from drbackup.jobs.replicate import last_replication_status, run_replication
from drbackup.jobs.repository import init_repository
from drbackup.jobs.store_health import check_store_health, last_store_health
from drbackup.store import StoreUnreachable
from tests.support.offsite import runtime, small_tree
from tests.support.servers import MotoServer
from tests.support.workspace import Workspace


def test_replica_down_backs_off_then_catches_up(
        workspace: Workspace, s3_server: MotoServer, own_s3_server: MotoServer, bucket: str,
        tmp_path: Path) -> None:
    data = small_tree(tmp_path / "data", files=3)
    workspace.add_s3_store("primary", s3_server, bucket)
    workspace.add_s3_store("replica", own_s3_server, f"{bucket}-replica")
    workspace.add_agency("planning", store="primary", replicas=["replica"])
    workspace.add_directory_source("planning", "documents", [data])
    rt = runtime(workspace)  # job functions directly: the CLI is covered elsewhere
    agency = rt.config.agency("planning")
    init_repository(rt, agency, "primary")
    run_backup(rt, agency, agency.sources[0])
    assert run_replication(rt, agency, "replica").lag_seconds == 0
    health = check_store_health(rt, "replica")
    assert health.up and health.latency_seconds is not None and health.latency_seconds > 0
    assert last_store_health(rt.state, "replica") == health

    own_s3_server.stop()
    (data / "file-000.txt").write_text("written while the replica is down\n")
    run_backup(rt, agency, agency.sources[0])  # the primary still works
    latest = rt.restic.snapshots(rt.target(agency))[-1]

    down = check_store_health(rt, "replica")
    assert not down.up and down.latency_seconds is None
    assert down.exit_code == ExitCode.STORE_UNREACHABLE and "unreachable" in (down.error or "")
    assert last_store_health(rt.state, "replica") == down

    backoff = Backoff(initial=30, factor=2, cap=600)
    clock = 1000.0
    for expected_wait in (30, 60):
        assert backoff.ready(clock)
        with pytest.raises(StoreUnreachable):
            run_replication(rt, agency, "replica", trigger="schedule")
        clock_next = backoff.failure(clock, "replica unreachable")
        assert clock_next - clock == expected_wait
        assert not backoff.ready(clock_next - 1)
        clock = clock_next
    # While it is down, the lag keeps counting from the snapshot that exists only on the primary.
    status = last_replication_status(rt.state, "planning", "replica")
    assert status is not None and latest.id in status.uncopied
    assert status.oldest_uncopied_time == latest.time.timestamp()
    failed = rt.state.runs(agency="planning", job="replicate", results=("failed",))
    assert len(failed) == 2

    # The store returns (moto comes back empty: its state is lost when it stops), and the next
    # attempt catches up completely.
    own_s3_server.start()
    caught_up = run_replication(rt, agency, "replica", trigger="schedule")
    backoff.success()
    assert check_store_health(rt, "replica").up
    primary_ids = {s.id for s in rt.restic.snapshots(rt.target(agency))}
    assert set(caught_up.copied) == primary_ids and caught_up.lag_seconds == 0
    copies = rt.restic.snapshots(rt.target(agency, "replica"))
    assert {c.original for c in copies} == primary_ids
    assert not backoff.backing_off
    rt.close()
