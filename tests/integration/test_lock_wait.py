"""daemon.lock_wait with the real restic: a job meeting a live exclusive lock waits for it and
then succeeds; with "0s" it fails at once with one line and leaves the live lock alone; a
stale lock (its process is gone) is removed and never waited on, even with a long lock_wait.

The live lock is a real `restic check` (exclusive lock) frozen with SIGSTOP once its lock file
exists: same host, process alive, so restic and drbackup must take the lock as live."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drbackup.errors import ExitCode
from tests.support.workspace import Workspace


@pytest.fixture
def repo(workspace: Workspace, tmp_path: Path) -> Iterator[tuple[Workspace, Path, Path]]:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("first\n")
    workspace.config["stores"]["disk"] = {"path": str(tmp_path / "repos")}
    workspace.add_agency("planning", store="disk")
    workspace.add_directory_source("planning", "docs", [data])
    workspace.cli("repo", "init", check=True)
    workspace.cli("backup", "--agency", "planning", "--no-progress", check=True)
    yield workspace, tmp_path / "repos" / "planning", data


def _locks(repository: Path) -> set[str]:
    """Lock files proper: restic writes `<id>-tmp-<n>` first and renames it, and a half-written
    lock is no lock to other restic processes."""
    names = os.listdir(repository / "locks")
    return {name for name in names if re.fullmatch(r"[0-9a-f]{64}", name)}


def _frozen_check(ws: Workspace, repository: Path, restic: str) -> subprocess.Popen[bytes]:
    """A real `restic check` holding its exclusive lock, stopped (SIGSTOP) while holding it."""
    env = {**os.environ, "RESTIC_REPOSITORY": str(repository),
           "RESTIC_PASSWORD_FILE": str(ws.root / "secrets" / "planning.password"),
           "RESTIC_CACHE_DIR": str(ws.root / "check-cache")}
    before = _locks(repository)
    process = subprocess.Popen([restic, "check", "--read-data"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not _locks(repository) - before:
        assert process.poll() is None, "restic check ended before it was frozen"
        assert time.monotonic() < deadline, "restic check never took its lock"
        time.sleep(0.005)
    process.send_signal(signal.SIGSTOP)
    while Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
        assert time.monotonic() < deadline, "restic check did not stop"
        time.sleep(0.005)
    assert _locks(repository) - before, "restic check finished before it was frozen"
    return process


def _backup(ws: Workspace) -> subprocess.Popen[str]:
    ws.write()
    return subprocess.Popen(
        [*ws.cli_argv(), "backup", "--agency", "planning", "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ws.env())


def test_a_live_lock_is_waited_for(repo: tuple[Workspace, Path, Path],
                                   restic_binary: str) -> None:
    ws, repository, data = repo
    ws.config["daemon"]["lock_wait"] = "2m"
    holder = _frozen_check(ws, repository, restic_binary)
    try:
        (data / "a.txt").write_text("second\n")
        backup = _backup(ws)
        time.sleep(4)  # the backup meets the lock, finds it live, and waits
        assert backup.poll() is None, f"backup did not wait: {backup.communicate()}"
    finally:
        holder.send_signal(signal.SIGCONT)
    assert holder.wait(timeout=120) == 0
    _, err = backup.communicate(timeout=180)
    assert backup.returncode == 0, err
    listed = ws.cli("snapshots", "--agency", "planning", check=True).stdout
    assert "2 snapshot(s)" in listed


def test_no_wait_fails_in_one_line_and_spares_the_live_lock(
        repo: tuple[Workspace, Path, Path], restic_binary: str) -> None:
    ws, repository, _ = repo
    ws.config["daemon"]["lock_wait"] = "0s"
    holder = _frozen_check(ws, repository, restic_binary)
    try:
        result = ws.cli("backup", "--agency", "planning", "--no-progress")
        assert result.returncode == ExitCode.REPO_LOCKED
        errors = [line for line in result.stderr.splitlines() if "error" in line]
        assert errors and all("is locked by another process" in line for line in errors), \
            result.stderr
        assert "Traceback" not in result.stderr
        assert "stale restic lock" not in result.stderr, "a live lock was taken for stale"
        assert _locks(repository), "the live lock was removed"
    finally:
        holder.send_signal(signal.SIGCONT)
    assert holder.wait(timeout=120) == 0


def test_a_stale_lock_is_removed_not_waited_on(repo: tuple[Workspace, Path, Path],
                                               restic_binary: str) -> None:
    ws, repository, data = repo
    ws.config["daemon"]["lock_wait"] = "30m"
    holder = _frozen_check(ws, repository, restic_binary)
    holder.kill()
    holder.wait()  # reaped: the lock's process is gone, so the lock is stale
    assert _locks(repository)
    (data / "a.txt").write_text("third\n")
    # Waiting on the stale lock would take 30 minutes; the backup must finish well before
    # this generous bound.
    result = ws.cli("backup", "--agency", "planning", "--no-progress", timeout=240)
    assert result.returncode == 0, result.stderr
    assert not _locks(repository)
