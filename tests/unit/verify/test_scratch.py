"""Drill scratch space: removed after use and after a failure; a killed drill's leftovers are
removed at the next start, while a drill that is still running keeps its space."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drbackup.verify.scratch import clean_stale_scratch, scratch_root, scratch_space

HOLDER = """
import sys, time
from pathlib import Path
from drbackup.verify.scratch import scratch_space
with scratch_space(Path(sys.argv[1]), "drill-7") as space:
    (space / "restored").mkdir()
    (space / "restored" / "file").write_text("data")
    (space / "restored").chmod(0o500)
    print("ready", flush=True)
    time.sleep(60)
"""


def _holder(state_dir: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(state_dir)],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def test_space_is_removed_after_use_and_after_failure(tmp_path: Path) -> None:
    with scratch_space(tmp_path, "drill-1") as space:
        (space / "ro").mkdir()
        (space / "ro" / "f").write_text("x")
        (space / "ro").chmod(0o500)
    assert list(scratch_root(tmp_path).iterdir()) == []
    with pytest.raises(RuntimeError), scratch_space(tmp_path, "drill-2") as space:
        (space / "f").write_text("x")
        raise RuntimeError("drill failed")
    assert list(scratch_root(tmp_path).iterdir()) == []


def test_killed_drill_leftovers_are_cleaned_but_a_live_drill_is_kept(tmp_path: Path) -> None:
    live = _holder(tmp_path)
    try:
        assert clean_stale_scratch(tmp_path) == []
        assert (scratch_root(tmp_path) / "drill-7" / "restored" / "file").exists()
        os.kill(live.pid, signal.SIGKILL)
        live.wait(10)
        deadline = time.monotonic() + 10
        removed: list[Path] = []
        while not removed and time.monotonic() < deadline:
            removed = clean_stale_scratch(tmp_path)
        assert removed == [scratch_root(tmp_path) / "drill-7"]
        assert list(scratch_root(tmp_path).iterdir()) == []
    finally:
        if live.poll() is None:
            live.kill()
            live.wait()
