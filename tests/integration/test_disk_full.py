"""Disk faults: the state and cache directories on a tiny tmpfs (2 MiB) that fills up. A full
state directory gives one clear line (exit 21, STATE) and never a run marked good that is not;
a full cache directory costs only speed (restic works without its cache); the state database
passes PRAGMA integrity_check throughout; everything works again once space returns. A restore
onto a full disk names the cause ('no space left on device') and finishes with --overwrite."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drbackup.engine import RepoTarget
from drbackup.errors import ExitCode
from tests.support.invariants import (
    assert_good_runs_are_real,
    assert_repository_consistent,
    restic_for,
    state_integrity,
    state_runs,
)
from tests.support.tinyfs import agency_on_tiny_fs, fill, tiny_tmpfs
from tests.support.workspace import Workspace


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs mounted for this test (we run as root in CI; skipped where mounting is
    not permitted, e.g. an unprivileged container)."""
    with tiny_tmpfs(tmp_path / "tiny") as mountpoint:
        yield mountpoint


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines()
              if line.strip() and not line.startswith('{"ts":')]
    assert len(errors) == 1 and errors[0].startswith("drbackup: error:"), result.stderr
    return errors[0]


@pytest.fixture
def setup(workspace: Workspace, tiny_fs: Path, tmp_path: Path
          ) -> tuple[Workspace, Path, RepoTarget]:
    data, target = agency_on_tiny_fs(workspace, tiny_fs, tmp_path, files=100)
    return workspace, data, target


def test_full_state_dir_gives_one_clear_line_and_recovers(
        setup: tuple[Workspace, Path, RepoTarget], tiny_fs: Path, tmp_path: Path) -> None:
    workspace, data, target = setup
    restic = restic_for(workspace, tmp_path / "verify-cache")
    state_db = workspace.state_dir / "state.db"

    # 1. Full before the state database exists.
    workspace.cli("repo", "init", check=True)  # the repository lives outside the tmpfs
    filler = fill(tiny_fs)
    refused = workspace.cli("backup", "--agency", "planning", "--no-progress")
    line = _one_error_line(refused)
    assert refused.returncode == ExitCode.STATE, refused.stderr
    assert "state database" in line and "disk space" in line
    assert not state_runs(workspace), "a run was recorded on a full disk"
    filler.unlink()
    workspace.cli("backup", "--agency", "planning", "--no-progress", check=True)
    assert state_integrity(state_db) == "ok"

    # 2. Full between runs (the database exists; its WAL is gone after a clean close).
    filler = fill(tiny_fs)
    failed = workspace.cli("backup", "--agency", "planning", "--no-progress")
    assert failed.returncode == ExitCode.STATE, failed.stderr
    assert "disk space" in _one_error_line(failed)
    filler.unlink()
    assert state_integrity(state_db) == "ok"

    # 3. Full in the middle of a run: filled once restic is running.
    done = threading.Event()

    def fill_when_restic_runs() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not done.is_set():
            for pid in os.listdir("/proc"):
                try:
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if any(b"restic" in a for a in argv[:1]) and b"backup" in argv and any(
                        str(data).encode() == a for a in argv):
                    fillers.append(fill(tiny_fs))
                    return
            time.sleep(0.01)

    fillers: list[Path] = []
    watcher = threading.Thread(target=fill_when_restic_runs, daemon=True)
    watcher.start()
    midway = workspace.cli("backup", "--agency", "planning", "--no-progress")
    done.set()
    watcher.join()
    assert fillers, "the disk was never filled during the backup"
    if midway.returncode != 0:  # 0 when restic was faster than the filler: also correct
        assert midway.returncode == ExitCode.STATE, midway.stderr
        assert "disk space" in _one_error_line(midway)
    for path in fillers:
        path.unlink()
    assert state_integrity(state_db) == "ok"

    # Space is back: the next backup succeeds, and nothing the state calls good is false.
    workspace.cli("backup", "--agency", "planning", "--no-progress", check=True)
    assert state_integrity(state_db) == "ok"
    assert_repository_consistent(restic, target)
    assert assert_good_runs_are_real(workspace, restic, target, data, tmp_path) >= 2
    assert state_runs(workspace)[-1].result == "success"


def test_full_cache_dir_costs_only_speed(setup: tuple[Workspace, Path, RepoTarget],
                                        tiny_fs: Path, tmp_path: Path) -> None:
    workspace, data, target = setup
    workspace.config["daemon"]["state_dir"] = str(tmp_path / "state")  # room for the state
    workspace.cli("repo", "init", check=True)
    filler = fill(tiny_fs)
    result = workspace.cli("backup", "--agency", "planning", "--no-progress", check=True)
    assert "Traceback" not in result.stderr
    filler.unlink()
    restic = restic_for(workspace, tmp_path / "verify-cache")
    assert_repository_consistent(restic, target)
    assert assert_good_runs_are_real(workspace, restic, target, data, tmp_path) == 1


def test_restore_onto_a_full_disk_says_so_and_finishes_once_space_returns(
        workspace: Workspace, tmp_path: Path) -> None:
    """Restore target on a 1 MiB tmpfs, 3 MiB of data: the error line names the first file that
    did not fit and 'no space left on device' (not only restic's 'There were N errors'), the
    hint says the disk is full, the partial target is named; with the filler gone and room,
    `--overwrite` completes it byte-identical."""
    data = tmp_path / "data"
    data.mkdir()
    for index in range(6):
        (data / f"f{index}.bin").write_bytes(os.urandom(512 * 1024))
    workspace.add_agency("planning")
    workspace.add_directory_source("planning", "docs", [data])
    workspace.cli("repo", "init", check=True)
    workspace.cli("backup", "--agency", "planning", "--no-progress", check=True)
    with tiny_tmpfs(tmp_path / "tiny", size="1m") as tiny:
        target = tiny / "restore"
        restore = ("restore", "--agency", "planning", "--source", "docs", "--target",
                   str(target), "--no-progress")
        result = workspace.cli(*restore)
        assert result.returncode == ExitCode.RESTIC_FAILED, result.stderr
        note, line = result.stderr.strip().splitlines()  # the partial target, then the error
        assert f"{target} holds a partial restore" in note
        assert line.startswith("drbackup: error:") and "Traceback" not in result.stderr
        assert "the first: " in line and "no space left on device" in line, line
        assert "(out of disk space where restic writes" in line, line
        partial = tmp_path / "partial"  # the partial restore, moved to a disk with room
        subprocess.run(["cp", "-a", str(target), str(partial)], check=True)
    assert any(partial.rglob("*.bin"))
    with tiny_tmpfs(tmp_path / "roomy", size="16m") as roomy:
        subprocess.run(["cp", "-a", str(partial), str(roomy / "restore")], check=True)
        refused = workspace.cli(*restore[:-2], str(roomy / "restore"), "--no-progress")
        assert refused.returncode == ExitCode.TARGET_REFUSED
        finished = workspace.cli(*restore[:-2], str(roomy / "restore"), "--no-progress",
                                 "--overwrite", check=True)
        assert "0 error(s)" in finished.stdout
        restored = roomy / "restore" / data.relative_to("/")
        assert sorted(p.name for p in restored.iterdir()) == sorted(p.name for p in data.iterdir())
        assert all((restored / p.name).read_bytes() == p.read_bytes() for p in data.iterdir())
