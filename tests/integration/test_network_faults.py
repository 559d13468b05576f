"""Network faults between drbackup/restic and the S3 server, injected by a TCP fault proxy
(tests/support/faultproxy.py): latency, connection resets, and outages in the middle of an
upload. Whatever happens, a backup either succeeds with a snapshot that `restic check` passes
and that restores to the data, or fails with one line and no run recorded as good."""

from __future__ import annotations

import os
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drbackup.errors import ExitCode
from tests.support.faultproxy import FaultProxy
from tests.support.invariants import (
    assert_good_runs_are_real,
    assert_repository_consistent,
    direct_s3_target,
    restic_for,
    state_integrity,
    state_runs,
)
from tests.support.servers import MotoServer
from tests.support.workspace import Workspace

LONG_OUTAGE_SECONDS = 180.0


def _make_data(root: Path) -> None:
    (root / "docs").mkdir(parents=True)
    for index in range(150):
        (root / "docs" / f"doc-{index:03d}.txt").write_text(f"document {index}\n" * 40)
    (root / "scan.bin").write_bytes(secrets.token_bytes(3 * 1024 * 1024))


@pytest.fixture
def proxied(workspace: Workspace, s3_server: MotoServer, bucket: str, tmp_path: Path
            ) -> Iterator[tuple[Workspace, FaultProxy, Path]]:
    """An agency whose store is reached through a fault proxy; its repository initialised
    (without faults) and its data in place."""
    data = tmp_path / "data"
    _make_data(data)
    with FaultProxy(s3_server.port, seed=int.from_bytes(os.urandom(2), "big")) as proxy:
        workspace.add_s3_store("offsite", s3_server, bucket)
        workspace.config["stores"]["offsite"]["url"] = f"s3:{proxy.endpoint}/{bucket}"
        workspace.add_agency("planning", store="offsite")
        workspace.add_directory_source("planning", "documents", [data])
        workspace.cli("repo", "init", check=True)
        yield workspace, proxy, data


def _assert_clean(result: subprocess.CompletedProcess[str]) -> None:
    """Success, or exactly one error line (beside structured JSON log records) and no
    traceback."""
    assert "Traceback" not in result.stderr
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines()
                  if line.strip() and not line.startswith('{"ts":')]
        assert len(errors) == 1 and errors[0].startswith("drbackup: error:"), result.stderr


def _assert_invariants(workspace: Workspace, s3_server: MotoServer, bucket: str, data: Path,
                       tmp_path: Path) -> int:
    restic = restic_for(workspace, tmp_path / "verify-cache")
    target = direct_s3_target(workspace, s3_server, bucket, "offsite", "planning")
    assert_repository_consistent(restic, target)
    assert state_integrity(workspace.state_dir / "state.db") == "ok"
    return assert_good_runs_are_real(workspace, restic, target, data, tmp_path)


def _backup_in_background(workspace: Workspace
                          ) -> tuple[threading.Thread, list[subprocess.CompletedProcess[str]]]:
    done: list[subprocess.CompletedProcess[str]] = []
    thread = threading.Thread(
        target=lambda: done.append(workspace.cli("backup", "--agency", "planning",
                                                 "--no-progress")), daemon=True)
    thread.start()
    return thread, done


def test_backup_through_latency_and_resets(proxied: tuple[Workspace, FaultProxy, Path],
                                           s3_server: MotoServer, bucket: str,
                                           tmp_path: Path) -> None:
    workspace, proxy, data = proxied
    proxy.latency = 0.002
    proxy.reset_probability = 0.3
    # Within the first KiB: a signed S3 request's headers alone are about that long, so every
    # chosen connection is cut (with 8 KiB, a run of small requests could escape every cut).
    proxy.reset_max_bytes = 1024
    results = [workspace.cli("backup", "--agency", "planning", "--no-progress")
               for _ in range(2)]
    for result in results:
        _assert_clean(result)
    proxy.reset_probability = 0.0
    assert proxy.stats.resets > 0, "the proxy injected no reset"
    good = _assert_invariants(workspace, s3_server, bucket, data, tmp_path)
    assert good == sum(1 for r in results if r.returncode == 0)


def _outage_then_recovery(proxied: tuple[Workspace, FaultProxy, Path], s3_server: MotoServer,
                          bucket: str, tmp_path: Path, outage_seconds: float) -> None:
    workspace, proxy, data = proxied
    proxy.outage_after(256 * 1024, "refuse")
    thread, done = _backup_in_background(workspace)
    assert proxy.wait_for_outage(120), "the backup never sent enough to trigger the outage"
    time.sleep(outage_seconds)
    proxy.set_outage(None)
    thread.join(timeout=900)
    assert done, "the backup did not finish after the store came back"
    _assert_clean(done[0])
    # restic retries a failed request for minutes: an outage shorter than that is ridden out.
    assert done[0].returncode == 0, done[0].stderr
    assert proxy.stats.refused > 0
    assert _assert_invariants(workspace, s3_server, bucket, data, tmp_path) == 1


def test_backup_rides_out_a_short_outage(proxied: tuple[Workspace, FaultProxy, Path],
                                         s3_server: MotoServer, bucket: str,
                                         tmp_path: Path) -> None:
    _outage_then_recovery(proxied, s3_server, bucket, tmp_path, outage_seconds=4.0)


@pytest.mark.slow
def test_backup_rides_out_a_long_outage(proxied: tuple[Workspace, FaultProxy, Path],
                                        s3_server: MotoServer, bucket: str,
                                        tmp_path: Path) -> None:
    _outage_then_recovery(proxied, s3_server, bucket, tmp_path,
                          outage_seconds=LONG_OUTAGE_SECONDS)


def test_outage_beyond_the_time_limit_fails_cleanly_then_recovers(
        proxied: tuple[Workspace, FaultProxy, Path], s3_server: MotoServer, bucket: str,
        tmp_path: Path) -> None:
    workspace, proxy, data = proxied
    workspace.agency("planning")["sources"][0]["timeout"] = "5s"
    proxy.outage_after(256 * 1024, "refuse")
    failed = workspace.cli("backup", "--agency", "planning", "--no-progress")
    _assert_clean(failed)
    assert failed.returncode in (ExitCode.TIMEOUT, ExitCode.STORE_UNREACHABLE,
                                 ExitCode.RESTIC_FAILED), failed.stderr
    runs = state_runs(workspace)
    assert runs[-1].job == "backup" and runs[-1].result in ("failed", "interrupted")
    assert runs[-1].snapshot_id is None and runs[-1].error

    # The store is back: the next backup succeeds and everything is consistent.
    proxy.set_outage(None)
    workspace.agency("planning")["sources"][0]["timeout"] = "10m"
    workspace.cli("backup", "--agency", "planning", "--no-progress", check=True)
    assert _assert_invariants(workspace, s3_server, bucket, data, tmp_path) == 1
