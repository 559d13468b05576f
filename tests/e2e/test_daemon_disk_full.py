"""Issue 9, disk faults through the daemon: `drbackup run` (a real subprocess, real restic) with
its state and cache directories on a tiny tmpfs the test mounts, backing up every 2 s into a
local repository elsewhere. The tmpfs is filled while the daemon runs: the daemon stays up, its
/metrics endpoint keeps answering (and shows the full filesystem), each failed backup is logged
as one clear line, nothing is recorded good that is not; once the filler is deleted the next
backup succeeds by itself and the state database passes PRAGMA integrity_check.

Timeouts are generous polling limits, never asserted durations."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import DaemonProcess, runs, wait_for
from tests.support.invariants import (
    assert_good_runs_are_real,
    assert_repository_consistent,
    restic_for,
    state_integrity,
)
from tests.support.metrics import parse, scrape
from tests.support.tinyfs import agency_on_tiny_fs, fill, tiny_tmpfs
from tests.support.workspace import Workspace

FULL_SECONDS = 12.0
STATE_AVAIL = 'drbackup_filesystem_avail_bytes{kind="state"}'


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    with tiny_tmpfs(tmp_path / "tiny", size="4m") as mountpoint:
        yield mountpoint


def _good(workspace: Workspace) -> list[dict[str, Any]]:
    return [r for r in runs(workspace) if r["result"] in ("success", "warning")]


def _alive(daemon: DaemonProcess) -> None:
    assert daemon.process.poll() is None, (
        f"the daemon exited {daemon.process.returncode}:\n{daemon.log_text()[-4000:]}")


def _disk_errors(daemon: DaemonProcess, since: float) -> list[dict[str, Any]]:
    return [e for e in daemon.logs() if e.get("level") == "error" and float(e["ts"]) >= since
            and "disk" in str(e.get("msg", "")) and e.get("source") == "documents"]


def test_daemon_survives_a_full_state_and_cache_disk(workspace: Workspace, tiny_fs: Path,
                                                     tmp_path: Path) -> None:
    data, target = agency_on_tiny_fs(workspace, tiny_fs, tmp_path, files=60, debounce="1s",
                                     schedule="every 2s")

    daemon = DaemonProcess(workspace)
    try:
        daemon.wait_ready()
        url = daemon.metrics_url()
        wait_for(lambda: _good(workspace), 120, "the first backup")

        # The disk fills while the daemon runs; a change is made meanwhile.
        filler = fill(tiny_fs)
        full_at = time.time()
        (data / "written-while-full.txt").write_text("must reach a snapshot\n")
        scrapes = 0
        while time.time() - full_at < FULL_SECONDS or not _disk_errors(daemon, full_at):
            _alive(daemon)
            values = parse(scrape(url))  # a failed scrape raises: it must keep answering
            assert values.get(STATE_AVAIL, 0) < 256 * 1024, values.get(STATE_AVAIL)
            scrapes += 1
            assert time.time() - full_at < 180, (
                f"no clear disk error logged for the backup:\n{daemon.log_text()[-4000:]}")
            time.sleep(1.0)
        _alive(daemon)
        errors = _disk_errors(daemon, full_at)
        for entry in errors:
            assert "\n" not in str(entry["msg"]) and "Traceback" not in str(entry["msg"])
            assert "disk space" in str(entry["msg"]), entry
        assert "Traceback" not in daemon.log_text()
        # Nothing recorded good while the disk was full that has no snapshot (the invariants
        # below check the snapshots exist).
        for run in runs(workspace):
            if run["result"] in ("success", "warning"):
                assert run["snapshot_id"], run

        # Space returns: the next backup succeeds by itself and holds the change.
        filler.unlink()
        freed_at = time.time()

        def caught_up() -> dict[str, Any] | None:
            done = [r for r in _good(workspace) if float(r["started_at"]) >= freed_at]
            return done[-1] if done else None
        first = wait_for(caught_up, 180, "a good backup after space returned", interval=0.5)
        _alive(daemon)
        values = parse(scrape(url))
        assert values.get(STATE_AVAIL, 0) > 1024 * 1024
        print(f"\ndisk full {freed_at - full_at:.0f}s: {len(errors)} failed backup(s) logged, "
              f"{scrapes} scrapes all answered, first good backup "
              f"{float(first['finished_at']) - freed_at:.1f}s after space returned")
        assert daemon.stop() == 0
    finally:
        daemon.stop()

    assert not [r for r in runs(workspace) if r["result"] == "running"], (
        "a run was left open after a clean stop")
    assert state_integrity(workspace.state_dir / "state.db") == "ok"
    restic = restic_for(workspace, tmp_path / "verify-cache")
    assert_repository_consistent(restic, target)
    assert assert_good_runs_are_real(workspace, restic, target, data, tmp_path) >= 2
