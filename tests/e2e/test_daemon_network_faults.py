"""Issue 9, network faults through the daemon: `drbackup run` (a real subprocess, real restic)
reaches its primary S3 store (the real moto server) through the TCP fault proxy
(tests/support/faultproxy.py). Latency and connection resets, then a full outage: the daemon stays
up, its /metrics endpoint keeps answering and reports the store down, backups back off instead
of failing on every schedule tick, nothing is recorded good without its snapshot, and once the
store is back the daemon catches up by itself (a change made during the outage reaches a
snapshot that restores byte-identical) and reports the store up again.

The short form (25 s outage) runs in `make test`; the long form (200 s) in `make test-long`.
Timeouts are generous polling limits; the figures (attempts, catch-up time) are printed for
docs/reliability.md, never asserted as durations."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemon import DaemonProcess, runs, wait_for
from tests.support.faultproxy import FaultProxy
from tests.support.invariants import (
    assert_good_runs_are_real,
    assert_repository_consistent,
    direct_s3_target,
    restic_for,
    state_integrity,
)
from tests.support.metrics import parse, scrape
from tests.support.servers import MotoServer
from tests.support.workspace import Workspace

SCHEDULE_SECONDS = 3
STORE_UP = 'drbackup_store_up{store="offsite"}'


def _make_data(root: Path) -> None:
    (root / "docs").mkdir(parents=True)
    for index in range(40):
        (root / "docs" / f"doc-{index:03d}.txt").write_text(f"document {index}\n" * 40)
    (root / "scan.bin").write_bytes(secrets.token_bytes(512 * 1024))


@pytest.fixture
def proxied_daemon(workspace: Workspace, s3_server: MotoServer, bucket: str, tmp_path: Path
                   ) -> Iterator[tuple[DaemonProcess, FaultProxy, Path]]:
    """The daemon backing up one source every 3 s into a store reached through a fault proxy,
    whose health is probed every 2 s; started, ready, and with its first backup done."""
    data = tmp_path / "data"
    _make_data(data)
    with FaultProxy(s3_server.port, seed=int.from_bytes(os.urandom(2), "big")) as proxy:
        workspace.add_s3_store("offsite", s3_server, bucket, health_schedule="every 2s")
        workspace.config["stores"]["offsite"]["url"] = f"s3:{proxy.endpoint}/{bucket}"
        workspace.add_agency("planning", store="offsite")
        workspace.add_directory_source("planning", "documents", [data], debounce="1s",
                                       schedule=f"every {SCHEDULE_SECONDS}s")
        daemon = DaemonProcess(workspace)
        try:
            daemon.wait_ready()
            wait_for(lambda: _good(workspace), 120, "the first backup")
            yield daemon, proxy, data
        finally:
            daemon.stop()


def _good(workspace: Workspace) -> list[dict[str, object]]:
    return [r for r in runs(workspace) if r["result"] in ("success", "warning")]


def _finished(workspace: Workspace) -> list[dict[str, object]]:
    return [r for r in runs(workspace) if r["result"] != "running"]


def _alive(daemon: DaemonProcess) -> None:
    assert daemon.process.poll() is None, (
        f"the daemon exited {daemon.process.returncode}:\n{daemon.log_text()[-4000:]}")


def _store_up(url: str) -> float | None:
    return parse(scrape(url)).get(STORE_UP)


def _faults_then_outage(proxied_daemon: tuple[DaemonProcess, FaultProxy, Path],
                        s3_server: MotoServer, bucket: str, tmp_path: Path,
                        outage_seconds: float) -> None:
    daemon, proxy, data = proxied_daemon
    workspace = daemon.ws
    url = daemon.metrics_url()

    # 1. Latency and resets (30 % of connections cut within their first KiB): runs go on, each
    #    either good with a snapshot or failed; the daemon stays up.
    proxy.latency = 0.002
    proxy.reset_probability = 0.3
    proxy.reset_max_bytes = 1024
    (data / "written-during-resets.txt").write_text("resets\n")
    before = len(_finished(workspace))
    wait_for(lambda: len(_finished(workspace)) >= before + 2 and proxy.stats.resets > 0, 180,
             "two backups through latency and resets")
    _alive(daemon)
    proxy.latency = 0.0
    proxy.reset_probability = 0.0

    # 2. Full outage (new connections reset at once, open ones cut).
    proxy.set_outage("refuse")
    outage_start = time.time()
    (data / "written-during-outage.txt").write_text("must reach a snapshot\n")
    scrapes = down_seen = 0
    while time.time() - outage_start < outage_seconds:
        _alive(daemon)
        if _store_up(url) == 0:  # a failed scrape raises: the endpoint must keep answering
            down_seen += 1
        scrapes += 1
        time.sleep(1.0)
    _alive(daemon)
    outage_end = time.time()
    proxy.set_outage(None)
    assert proxy.stats.refused > 0, "the outage refused no connection"
    assert down_seen, f"/metrics never reported the store down in {scrapes} scrapes"
    assert _store_up(url) == 0

    during = [r for r in runs(workspace) if outage_start <= float(str(r["started_at"]))
              < outage_end]
    fires = int(outage_seconds // SCHEDULE_SECONDS)
    # Back-off: far fewer attempts than the schedule fired (no timing asserted).
    assert len(during) <= max(2, fires // 3), (
        f"{len(during)} backup attempts during a {outage_seconds:.0f}s outage "
        f"(the schedule fired about {fires} times): no back-off")
    postponed = [e for e in daemon.logs() if e.get("event") in ("backoff", "backoff_wait")
                 and outage_start <= float(e["ts"]) < outage_end]
    assert postponed, "no backup was postponed (back-off) during the outage"
    for run in during:
        if run["result"] in ("success", "warning"):
            assert run["snapshot_id"], f"run {run['id']} is good without a snapshot"

    # 3. Catch-up by itself: a backup started after the outage succeeds (it holds the change
    #    made during the outage) and the store is reported up again.
    def caught_up() -> dict[str, object] | None:
        done = [r for r in _good(workspace) if float(str(r["started_at"])) >= outage_start
                and r["finished_at"] is not None]
        return done[-1] if done else None
    first = wait_for(caught_up, 600, "a good backup after the outage", interval=0.5)
    catch_up = float(str(first["finished_at"])) - outage_end
    wait_for(lambda: _store_up(url) == 1, 120, "the store reported up again")
    _alive(daemon)
    print(f"\noutage {outage_seconds:.0f}s: {len(during)} backup attempt(s) during it "
          f"(schedule fired ~{fires}), {scrapes} scrapes ({down_seen} reporting the store down),"
          f" first good backup {catch_up:.1f}s after the store returned")
    assert daemon.stop() == 0

    restic = restic_for(workspace, tmp_path / "verify-cache")
    target = direct_s3_target(workspace, s3_server, bucket, "offsite", "planning")
    assert_repository_consistent(restic, target)
    assert state_integrity(workspace.state_dir / "state.db") == "ok"
    # Every good run names a real snapshot; the newest restores byte-identical to the data,
    # which includes the file written during the outage.
    assert assert_good_runs_are_real(workspace, restic, target, data, tmp_path) >= 2


def test_daemon_rides_out_faults_and_a_short_outage(
        proxied_daemon: tuple[DaemonProcess, FaultProxy, Path], s3_server: MotoServer,
        bucket: str, tmp_path: Path) -> None:
    _faults_then_outage(proxied_daemon, s3_server, bucket, tmp_path, outage_seconds=25.0)


@pytest.mark.slow
def test_daemon_rides_out_faults_and_a_long_outage(
        proxied_daemon: tuple[DaemonProcess, FaultProxy, Path], s3_server: MotoServer,
        bucket: str, tmp_path: Path) -> None:
    _faults_then_outage(proxied_daemon, s3_server, bucket, tmp_path, outage_seconds=200.0)
