"""Helpers for database tests: process command lines (to prove no password is in argv), the
state database's runs, and waiting."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from drbackup.engine import RepoTarget, Restic, ResticSettings, Snapshot
from drbackup.state import StateDB
from drbackup.state.db import RunRecord
from tests.support.procs import read_cmdlines


def all_cmdlines() -> list[str]:
    """Every process's command line, arguments joined by spaces."""
    return [" ".join(argv) for argv in read_cmdlines()]


def wait_until(condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition"
               ) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not reached within {timeout}s")


def runs(state_dir: Path, *, agency: str, source: str, job: str = "backup") -> list[RunRecord]:
    state = StateDB(state_dir / "state.db")
    try:
        return state.runs(agency=agency, source=source, job=job)
    finally:
        state.close()


def local_snapshots(workspace_state_dir: Path, agency: str, password_file: Path,
                    restic_binary: str = "restic") -> list[Snapshot]:
    """The snapshots of an agency's repository in the embedded local store, read in-process
    (cheaper than another CLI run)."""
    restic = Restic(ResticSettings(binary=restic_binary,
                                   cache_dir=workspace_state_dir.parent / "cache"))
    return restic.snapshots(RepoTarget(str(workspace_state_dir / "repos" / agency),
                                       password_file))
