"""Replication acceptance against real moto S3 servers and real restic: primary and replica on
two different servers, identical snapshots, `restic check` on both, a byte-identical restore from
the replica alone, idempotence, resume after a kill, and the lag when the replica is behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil

from drbackup.jobs.backup import run_backup
from drbackup.jobs.replicate import (
    last_replication_status,
    measure_replication,
    run_replication,
)
from drbackup.jobs.repository import init_repository
from tests.support.offsite import runtime, small_tree
from tests.support.servers import MotoServer
from tests.support.trees import manifest
from tests.support.workspace import Workspace


def test_replica_on_a_second_server_holds_the_same_snapshots_and_restores_alone(
        workspace: Workspace, s3_server: MotoServer, own_s3_server: MotoServer, bucket: str,
        tmp_path: Path) -> None:
    data = small_tree(tmp_path / "data")
    (data / "blob.bin").write_bytes(os.urandom(1024 * 1024))
    workspace.add_s3_store("primary", s3_server, bucket)
    workspace.add_s3_store("replica", own_s3_server, f"{bucket}-replica")
    workspace.add_agency("planning", store="primary", replicas=["replica"])
    workspace.add_directory_source("planning", "documents", [data])

    workspace.cli("repo", "init", "--store", "primary", check=True)
    workspace.cli("backup", "--agency", "planning", check=True)

    first = workspace.cli("--json", "replicate", "--agency", "planning")
    assert first.returncode == 0, first.stderr
    [result] = json.loads(first.stdout)
    assert result["initialized"] is True and len(result["copied"]) == 1
    assert result["lag_seconds"] == 0

    rt = runtime(workspace)
    agency = rt.config.agency("planning")
    primary, replica = rt.target(agency), rt.target(agency, "replica")
    originals = rt.restic.snapshots(primary)
    copies = rt.restic.snapshots(replica)
    assert [c.original for c in copies] == [o.id for o in originals]
    assert [c.tree for c in copies] == [o.tree for o in originals]
    assert sorted(result["copied"]) == sorted(o.id for o in originals)
    # --copy-chunker-params: same chunker polynomial, so deduplication holds across the copy.
    assert (rt.restic.repository_config(primary)["chunker_polynomial"]
            == rt.restic.repository_config(replica)["chunker_polynomial"])
    assert rt.restic.check(primary).ok
    assert rt.restic.check(replica).ok

    # A second replicate copies nothing.
    second = workspace.cli("--json", "replicate", "--agency", "planning", check=True)
    assert json.loads(second.stdout)[0]["copied"] == []
    assert len(rt.restic.snapshots(replica)) == 1
    runs = rt.state.runs(agency="planning", job="replicate")
    assert [r.result for r in runs] == ["success", "success"]
    assert [r.details["copied"] for r in runs] == [0, 1]
    rt.close()

    # Restore from the replica alone: a config that knows only the replica server, with a
    # fresh state and cache.
    alone = Workspace(tmp_path / "replica-only")
    alone.config["daemon"]["restic"] = workspace.config["daemon"]["restic"]
    alone.add_s3_store("replica", own_s3_server, f"{bucket}-replica")
    alone.add_agency("planning", store="replica", password=workspace.passwords["planning"])
    alone.add_directory_source("planning", "documents", [data])
    target = tmp_path / "restored"
    alone.cli("restore", "--agency", "planning", "--source", "documents",
              "--target", str(target), check=True)
    assert manifest(target / data.relative_to("/")) == manifest(data)


def test_killed_copy_resumes_and_completes(workspace: Workspace, s3_server: MotoServer,
                                           own_s3_server: MotoServer, bucket: str,
                                           tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for index in range(3):
        (data / f"big-{index}.bin").write_bytes(os.urandom(10 * 1024 * 1024))
    workspace.add_s3_store("primary", s3_server, bucket)
    workspace.add_s3_store("replica", own_s3_server, f"{bucket}-replica")
    workspace.add_agency("planning", store="primary", replicas=["replica"])
    workspace.add_directory_source("planning", "documents", [data])
    workspace.cli("repo", "init", check=True)  # primary, then the replica (chunker copied)
    workspace.cli("backup", "--agency", "planning", check=True)
    config = workspace.write()

    replica_s3 = own_s3_server.client()
    replica_bucket = f"{bucket}-replica"

    def keys(prefix: str) -> list[str]:
        page = replica_s3.list_objects_v2(Bucket=replica_bucket, Prefix=prefix)
        return [o["Key"] for o in page.get("Contents", [])]

    process = subprocess.Popen(
        [sys.executable, "-m", "drbackup", "--config", str(config), "replicate",
         "--agency", "planning"], env=workspace.env(), start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not keys("planning/data/") and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    # Kill drbackup and its restic child (restic runs in its own process group) mid-copy, the
    # way a power cut or an OOM kill would: no chance to clean up or remove its lock.
    victims = [process.pid, *(c.pid for c in psutil.Process(process.pid).children(True))]
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait()
    assert keys("planning/data/"), "the copy never started writing packs"
    assert keys("planning/snapshots/") == [], "the copy finished before it could be killed"

    rerun = workspace.cli("--json", "replicate", "--agency", "planning")
    assert rerun.returncode == 0, rerun.stderr
    assert len(json.loads(rerun.stdout)[0]["copied"]) == 1
    rt = runtime(workspace)
    agency = rt.config.agency("planning")
    assert rt.restic.check(rt.target(agency, "replica")).ok
    [copy] = rt.restic.snapshots(rt.target(agency, "replica"))
    [original] = rt.restic.snapshots(rt.target(agency))
    assert copy.original == original.id and copy.tree == original.tree
    rt.close()


def test_lag_is_the_age_of_the_oldest_uncopied_snapshot(
        workspace: Workspace, s3_server: MotoServer, bucket: str, tmp_path: Path) -> None:
    data = small_tree(tmp_path / "data")
    workspace.add_s3_store("primary", s3_server, bucket)
    workspace.add_s3_store("replica", s3_server, f"{bucket}-replica")
    workspace.add_agency("planning", store="primary", replicas=["replica"])
    workspace.add_directory_source("planning", "documents", [data])
    rt = runtime(workspace)  # job functions directly: the CLI is covered above
    agency = rt.config.agency("planning")
    for store in ("primary", "replica"):
        init_repository(rt, agency, store)
    run_backup(rt, agency, agency.sources[0])
    run_replication(rt, agency, "replica")
    status = last_replication_status(rt.state, "planning", "replica")
    assert status is not None and status.lag_seconds == 0 and status.complete

    # Replication stopped; three more backups (3h, 2h and 1h ago).
    now = datetime.now(tz=UTC)
    made = []
    for hours in (3, 2, 1):
        (data / "file-002.txt").write_text(f"change {hours}\n")
        result = rt.restic.backup(rt.target(agency), [str(data)], host="test-host",
                                  tags=["agency=planning", "source=documents",
                                        "kind=directory"],
                                  time=now - timedelta(hours=hours))
        assert result.summary.snapshot_id is not None
        made.append(result.summary.snapshot_id)
    measured = measure_replication(rt, agency, "replica")
    by_id = {s.id: s for s in rt.restic.snapshots(rt.target(agency))}
    oldest = by_id[made[0]].time.timestamp()
    assert measured.uncopied == made
    assert measured.oldest_uncopied_time == oldest
    assert measured.lag_seconds == measured.measured_at - oldest
    assert measured.lag_seconds >= 3 * 3600
    recorded = last_replication_status(rt.state, "planning", "replica")
    assert recorded is not None and recorded.uncopied == made
    assert recorded.oldest_uncopied_time == oldest and not recorded.complete

    # Replication resumes: all three copied, lag back to 0.
    outcome = run_replication(rt, agency, "replica", trigger="test")
    assert sorted(outcome.copied) == sorted(made) and outcome.lag_seconds == 0
    recorded = last_replication_status(rt.state, "planning", "replica")
    assert recorded is not None and recorded.lag_seconds == 0
    rt.close()
