"""Issue 5 acceptance, store down for a while: the daemon (a real subprocess) replicates after
each backup; when the replica's server is stopped, backups go on, replication fails once and
backs off (no retry loop), the daemon stays up; when the server returns, the store health probe
ends the back-off and the safety-net replication catches up with no lost change.

moto loses its state when stopped, so the returning replica is empty: catching up means
re-creating the replica repository and copying every snapshot, including the one made while it
was down. Timeouts are generous polling limits, never asserted durations."""

from __future__ import annotations

import json
from pathlib import Path

from drbackup.jobs.replicate import STATUS_KEY
from tests.support.daemon import DaemonProcess, kv, runs, successes, wait_for
from tests.support.offsite import runtime, small_tree
from tests.support.servers import MotoServer
from tests.support.workspace import Workspace


def test_replica_down_daemon_backs_off_stays_up_and_catches_up(
        workspace: Workspace, s3_server: MotoServer, own_s3_server: MotoServer, bucket: str,
        tmp_path: Path) -> None:
    data = small_tree(tmp_path / "data", files=3)
    workspace.add_s3_store("primary", s3_server, bucket)
    workspace.add_s3_store("replica", own_s3_server, f"{bucket}-replica",
                           health_schedule="every 2s")
    workspace.add_agency("planning", store="primary", replicas=["replica"],
                         replicate_schedule="every 3s")
    workspace.add_directory_source("planning", "documents", [data], debounce="1s")

    def replications(result: str) -> list[dict[str, object]]:
        return [r for r in runs(workspace, job="replicate") if r["result"] == result]

    daemon = DaemonProcess(workspace)
    try:
        daemon.wait_ready()
        wait_for(lambda: successes(workspace, "planning", "documents"), 90, "first backup")
        wait_for(lambda: replications("success"), 90, "first replication")

        own_s3_server.stop()
        (data / "written-while-replica-down.txt").write_text("must not be lost\n")
        wait_for(lambda: successes(workspace, "planning", "documents")[1:], 90,
                 "a backup while the replica is down")
        wait_for(lambda: replications("failed"), 90, "a failed replication")
        wait_for(lambda: [e for e in daemon.logs() if e.get("event") == "backoff"], 60,
                 "the replication backing off")
        assert daemon.process.poll() is None, "the daemon must stay up"

        def behind() -> dict[str, object] | None:
            raw = kv(workspace, STATUS_KEY.format(agency="planning", replica="replica"))
            value = json.loads(raw or "{}")
            return value if value.get("uncopied") else None

        status = wait_for(behind, 60, "the lag recorded while the replica is down")
        assert float(str(status["lag_seconds"])) > 0

        own_s3_server.start()
        ok_before = len(replications("success"))
        wait_for(lambda: replications("success")[ok_before:], 180,
                 "replication catching up after the replica returned")
        assert daemon.process.poll() is None
    finally:
        daemon.stop()

    rt = runtime(workspace)
    agency = rt.config.agency("planning")
    primary = rt.restic.snapshots(rt.target(agency))
    copies = rt.restic.snapshots(rt.target(agency, "replica"))
    assert {c.original for c in copies} == {p.id for p in primary}
    latest_copy = max(copies, key=lambda s: s.time)
    names = {Path(n.path).name for n in rt.restic.ls(rt.target(agency, "replica"),
                                                      latest_copy.id)}
    assert "written-while-replica-down.txt" in names
    status = json.loads(kv(workspace, STATUS_KEY.format(agency="planning",
                                                        replica="replica")) or "{}")
    assert status["lag_seconds"] == 0 and status["uncopied"] == []
    rt.close()
