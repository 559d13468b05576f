"""The ransomware guard with real restic and real S3 servers (#16): an attack on a source is
judged suspect; forget and prune remove nothing on the primary and the replica while the
agency is frozen (checked in both buckets); a false-alarm release clears the freeze and the
next equal workload passes; a backup killed before its verdict loses no verdict."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest

from drbackup.errors import ExitCode
from drbackup.jobs.backup import run_backup
from drbackup.jobs.tags import snapshot_tags
from drbackup.state import guard as records
from tests.support import formats
from tests.support.offsite import runtime
from tests.support.servers import MotoServer
from tests.support.trees import office_tree
from tests.support.workspace import Workspace

RETENTION = {"keep_within": "1s", "keep_daily": 1}


def _encrypt(paths: list[Path], seed: int) -> None:
    for n, path in enumerate(paths):
        path.write_bytes(formats.noise(path.stat().st_size, seed=seed * 1000 + n))


def _snapshot_keys(server: MotoServer, bucket: str) -> list[str]:
    client = server.client()
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [o["Key"] for o in page.get("Contents", []) if "/snapshots/" in o["Key"]]
    return sorted(keys)


def test_attack_freezes_retention_on_primary_and_replica_until_a_false_alarm_release(
        workspace: Workspace, s3_server: MotoServer, own_s3_server: MotoServer, bucket: str,
        tmp_path: Path) -> None:
    data = office_tree(tmp_path / "share")
    workspace.add_s3_store("primary", s3_server, bucket)
    workspace.add_s3_store("replica", own_s3_server, f"{bucket}-replica")
    workspace.add_agency("planning", store="primary", replicas=["replica"], retention=RETENTION)
    workspace.add_directory_source("planning", "share", [data])
    workspace.cli("repo", "init", check=True)
    # Two snapshots of earlier days, which the policy (keep_within 1h, keep_daily 1) expires.
    rt = runtime(workspace)
    agency = rt.config.agency("planning")
    for days in (3, 2):
        rt.restic.backup(rt.target(agency), [str(data)], host=rt.hostname,
                         tags=snapshot_tags(agency, agency.sources[0]),
                         time=datetime.now(tz=UTC) - timedelta(days=days))
    workspace.cli("backup", "--agency", "planning", check=True)
    (data / "dept-0" / "minutes-2.txt").write_bytes(formats.prose(11 * 1024, seed=99))
    clean = json.loads(workspace.cli("--json", "backup", "--agency", "planning",
                                     check=True).stdout)[0]["guard"]
    assert clean["verdict"] == "clean"

    victims = sorted(p for p in data.rglob("*") if p.is_file())[:30]
    _encrypt(victims, seed=1)
    attacked = workspace.cli("--json", "backup", "--agency", "planning", check=True)
    assert "SUSPECT (ransomware guard)" in attacked.stderr
    verdict = json.loads(attacked.stdout)[0]["guard"]
    assert verdict["verdict"] == "suspect" and verdict["rules"] == ["content"]
    assert "look encrypted" in verdict["reasons"][0]
    workspace.cli("replicate", "--agency", "planning", check=True)

    before = {"primary": _snapshot_keys(s3_server, bucket),
              "replica": _snapshot_keys(own_s3_server, f"{bucket}-replica")}
    assert len(before["primary"]) == len(before["replica"]) == 5
    for store in ("primary", "replica"):
        planned = json.loads(workspace.cli("--json", "forget", "--agency", "planning", "--store",
                                           store, "--dry-run", check=True).stdout)
        assert len(planned["remove"]) == 2  # what the freeze holds back
        for verb in ("forget", "prune"):
            refused = workspace.cli(verb, "--agency", "planning", "--store", store)
            assert refused.returncode == ExitCode.GUARD_FROZEN, refused.stderr
            lines = [line for line in refused.stderr.splitlines() if "drbackup: error" in line]
            assert len(lines) == 1 and "frozen" in lines[0] and "guard release" in lines[0]
    assert _snapshot_keys(s3_server, bucket) == before["primary"]
    assert _snapshot_keys(own_s3_server, f"{bucket}-replica") == before["replica"]

    status = json.loads(workspace.cli("--json", "guard", "status", check=True).stdout)[0]
    assert status["freeze"]["snapshot_id"] == verdict_id(attacked)
    assert status["sources"][0]["last_clean"]["snapshot_id"] == clean["snapshot_id"]

    released = workspace.cli("guard", "release", "--agency", "planning", "--snapshot",
                             verdict_id(attacked)[:12], "--false-alarm", "--reason",
                             "key files of the tax office, not an attack", check=True)
    assert "freeze released" in released.stdout

    # The same workload again (another 30 files rewritten the same way) is allowed now.
    _encrypt(sorted(p for p in data.rglob("*") if p.is_file())[30:60], seed=2)
    again = json.loads(workspace.cli("--json", "backup", "--agency", "planning",
                                     check=True).stdout)[0]["guard"]
    assert again["verdict"] == "clean", again
    workspace.cli("forget", "--agency", "planning", check=True)
    assert len(_snapshot_keys(s3_server, bucket)) == 4  # the two old ones are gone

    release_run = rt.state.last_run(agency="planning", job="guard-release")
    assert release_run is not None and release_run.details["reason"].startswith("key files")
    reports = list((workspace.state_dir / "reports" / "planning").glob("*-guard-release-*"))
    assert len(reports) == 1 and "signature" in reports[0].read_text()


def verdict_id(result: subprocess.CompletedProcess[str]) -> str:
    return str(json.loads(result.stdout)[0]["guard"]["snapshot_id"])


def _attacked_after_a_backup(workspace: Workspace, tmp_path: Path, *, seed: int) -> Path:
    """A 40-file share on a local store, backed up clean, then half of it encrypted."""
    data = office_tree(tmp_path / "share", files=40)
    workspace.config["stores"]["local"] = {"path": str(tmp_path / "store")}
    workspace.add_agency("planning")
    workspace.add_directory_source("planning", "share", [data])
    workspace.cli("repo", "init", check=True)
    workspace.cli("backup", "--agency", "planning", check=True)
    _encrypt(sorted(p for p in data.rglob("*") if p.is_file())[:20], seed=seed)
    return data


def test_a_backup_killed_before_its_verdict_is_judged_by_the_next_one(
        workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _attacked_after_a_backup(workspace, tmp_path, seed=3)

    # The window a kill -9 can hit: the snapshot exists, its verdict was not written.
    rt = runtime(workspace)
    agency = rt.config.agency("planning")
    source = agency.sources[0]

    class Killed(BaseException):
        pass

    def die(*args: object, **kwargs: object) -> None:
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(records, "record_verdict", die)
        with pytest.raises(Killed):
            run_backup(rt, agency, source)
    unjudged = rt.restic.snapshots(rt.target(agency))[-1].id
    assert records.verdict_for(rt.state, "planning", unjudged) is None

    # The next backup is compared with the last judged snapshot: restic reports the
    # encrypted files as modified again, not as unchanged.
    outcome = run_backup(rt, agency, source)
    assert outcome.guard is not None and outcome.guard.suspect, outcome.guard
    assert outcome.guard.numbers["modified"] >= 20


def test_kill_9_of_drbackup_mid_backup_loses_no_verdict(
        workspace: Workspace, tmp_path: Path) -> None:
    data = _attacked_after_a_backup(workspace, tmp_path, seed=4)
    # Enough data that restic is still at work when drbackup is killed.
    (data / "bulk").mkdir()
    for i in range(8):
        (data / "bulk" / f"scan-{i}.txt").write_bytes(formats.prose(4 * 1024 * 1024, seed=i))

    running = subprocess.Popen([*workspace.cli_argv(), "backup", "--agency", "planning"],
                               env=workspace.env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = psutil.Process(running.pid).children(recursive=True)
        if any("restic" in (c.name() or "") for c in children):
            break
        time.sleep(0.02)
    os.kill(running.pid, signal.SIGKILL)
    running.wait()
    for child in psutil.process_iter(["name", "cmdline"]):
        if child.info["name"] == "restic" and str(tmp_path) in " ".join(
                child.info["cmdline"] or []):
            psutil.wait_procs([child], timeout=30)

    after = json.loads(workspace.cli("--json", "backup", "--agency", "planning",
                                     check=True).stdout)[0]["guard"]
    assert after["verdict"] == "suspect", after
