"""`make demo` (scripts/demo.sh) runs non-interactively with DEMO_SECONDS: the daemon starts in
the foreground, a change to the sample data is picked up, and the git-tracked data is untouched."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.trees import manifest

ROOT = Path(__file__).resolve().parents[2]


def test_demo_shows_a_change_being_picked_up(tmp_path: Path) -> None:
    sample = ROOT / "demo" / "sample-data"
    before = manifest(sample)
    env = {**os.environ, "DEMO_SECONDS": "0", "DEMO_ROOT": str(tmp_path / "demo"),
           "DEMO_METRICS_LISTEN": "127.0.0.1:0"}
    env.pop("DRBACKUP_CONFIG", None)
    result = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh")], capture_output=True,
                            text=True, timeout=300, env=env, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "the change was picked up" in output
    assert "trigger=watch" in output
    assert "2 snapshot(s)" in output
    assert 'drbackup_backup_runs_total{agency="demo",source=' in output
    assert manifest(sample) == before
