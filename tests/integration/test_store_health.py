"""Store health against a real moto server that is stopped and started: each probe is recorded
in state (for drbackup_store_up / drbackup_store_latency_seconds), an unreachable store is told
apart from one that answers with an error, and only unreachability backs jobs off.

Replication backing off and catching up under the running daemon is the e2e test
tests/e2e/test_offsite_daemon.py; the Backoff arithmetic is unit-tested."""

from __future__ import annotations

import time

import pytest

from drbackup.errors import DrBackupError, ExitCode
from drbackup.jobs.backoff import STORE_BACKOFFS
from drbackup.jobs.store_health import check_store_health, last_store_health, store_health_job
from tests.support.offsite import runtime
from tests.support.servers import MotoServer
from tests.support.workspace import Workspace


def test_store_up_down_and_answering_again(workspace: Workspace, own_s3_server: MotoServer,
                                           bucket: str) -> None:
    workspace.add_s3_store("replica", own_s3_server, bucket)
    workspace.add_agency("planning", store="replica")
    own_s3_server.client().create_bucket(Bucket=bucket)
    rt = runtime(workspace)
    agency = rt.config.agency("planning")

    up = check_store_health(rt, "replica")
    assert up.up and up.latency_seconds is not None and up.latency_seconds > 0
    assert last_store_health(rt.state, "replica") == up

    own_s3_server.stop()
    with pytest.raises(DrBackupError) as down:
        store_health_job(rt, agency, "replica", "schedule")
    assert down.value.exit_code == ExitCode.STORE_UNREACHABLE
    record = last_store_health(rt.state, "replica")
    assert record is not None and not record.up and record.latency_seconds is None
    assert "unreachable" in (record.error or "")
    assert not STORE_BACKOFFS.ready("replica", time.time())  # jobs on it back off

    # The server returns empty (moto loses its state): it answers "no such bucket". That is a
    # store problem, not unreachability: the back-off ends so jobs can re-create and catch up.
    own_s3_server.start()
    with pytest.raises(DrBackupError) as answered:
        store_health_job(rt, agency, "replica", "schedule")
    assert answered.value.exit_code == ExitCode.STORE_ACCESS
    assert STORE_BACKOFFS.ready("replica", time.time())
    own_s3_server.client().create_bucket(Bucket=bucket)
    assert store_health_job(rt, agency, "replica", "schedule").up
    rt.close()
