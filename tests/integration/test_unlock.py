"""`drbackup unlock` removes the lock a crashed restic left behind, and only stale ones."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.support.dbcheck import runs
from tests.support.workspace import Workspace


def test_unlock_removes_a_crashed_runs_lock(workspace: Workspace, tmp_path: Path,
                                            restic_binary: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "big.bin").write_bytes(os.urandom(8 * 1024 * 1024))
    workspace.add_agency("planning")
    workspace.add_directory_source("planning", "docs", [data])
    workspace.cli("repo", "init", check=True)
    repo = workspace.state_dir / "repos" / "planning"
    env = {"PATH": os.environ["PATH"], "RESTIC_REPOSITORY": str(repo),
           "RESTIC_PASSWORD_FILE": workspace.agency("planning")["password_file"],
           "RESTIC_CACHE_DIR": str(tmp_path / "cache")}
    # A backup crawling at 64 KiB/s holds its lock until we kill it like a crash would.
    crashed = subprocess.Popen([restic_binary, "backup", "--limit-upload", "64", str(data)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not any((repo / "locks").iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert any((repo / "locks").iterdir()), "restic never took its lock"
    crashed.send_signal(signal.SIGKILL)
    crashed.wait()
    assert any((repo / "locks").iterdir())

    result = workspace.cli("unlock", "--agency", "planning", check=True)
    assert "stale locks removed" in result.stdout
    assert not any((repo / "locks").iterdir())
    # Through the job, like every other: an 'unlock' run with what it saw (#15 item 7).
    [run] = runs(workspace.state_dir, agency="planning", job="unlock")
    assert run.result == "success" and run.store == "local"
    assert run.details["locks_removed"] == 1  # restic's own count
    workspace.cli("backup", "--agency", "planning", check=True)
