"""A one-shot command killed by SIGKILL cannot close its run; the next look at the state does:
`status`, `report` and `drbackup_jobs_running` never count a dead process's run as running."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from tests.support.procs import read_cmdlines
from tests.support.workspace import Workspace


def _count(state_db: Path, where: str = "1") -> int:
    try:
        with sqlite3.connect(state_db) as conn:
            return int(conn.execute(f"SELECT count(*) FROM runs WHERE {where}").fetchone()[0])  # noqa: S608
    except sqlite3.Error:
        return 0  # not created yet


def _running_rows(state_db: Path) -> int:
    return _count(state_db, "result = 'running'")


def test_runs_of_sigkilled_backups_are_not_counted_as_running(workspace: Workspace,
                                                               tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.bin").write_bytes(os.urandom(1 << 20))
    workspace.add_agency("planning")
    workspace.add_directory_source("planning", "docs", [data])
    workspace.cli("repo", "init", check=True)
    state_db = workspace.state_dir / "state.db"
    for started in range(1, 4):
        command = subprocess.Popen([*workspace.cli_argv(), "backup", "--agency", "planning"],
                                   env=workspace.env(), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while _count(state_db, "job = 'backup'") < started and time.monotonic() < deadline:
            time.sleep(0.005)
        command.send_signal(signal.SIGKILL)
        assert command.wait(timeout=30) == -signal.SIGKILL
    # The killed commands' restic children (own process groups) end by themselves.
    deadline = time.monotonic() + 60
    while any(str(data) in " ".join(argv) for argv in read_cmdlines()):
        assert time.monotonic() < deadline, "a restic of a killed backup never ended"
        time.sleep(0.1)
    assert _running_rows(state_db) >= 1  # the killed ones could not close their runs

    metrics = workspace.cli("metrics", check=True).stdout
    assert "drbackup_jobs_running 0.0" in metrics.splitlines()
    assert _running_rows(state_db) == 0
    (source,) = json.loads(workspace.cli("status", "--json", check=True).stdout)["sources"]
    assert (source["last_result"], source["running_job"]) == ("interrupted", None)
    with sqlite3.connect(state_db) as conn:
        errors = [row[0] for row in conn.execute(
            "SELECT error FROM runs WHERE result = 'interrupted'")]
    assert len(errors) == 3 and all("SIGKILL" in (error or "") for error in errors)
