"""A real daemon publishes its signed fleet summary (#20 item 1): at start, again when an
agency's verdict changes (its first backup turns "no good backup" into "never drilled"), and on
[fleet] publish_schedule once a reload sets one; each publication under a higher sequence, each
trusted by a reader holding the host's public key."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

from drbackup.fleet.trust import Keyring, Trust, judge
from drbackup.verify.evidence import KEY_DIR, PUBLIC_KEY_FILE
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.workspace import Workspace


def _published(daemon: DaemonProcess) -> int:
    return len(daemon.events("fleet_published"))


def test_daemon_publishes_at_start_on_verdict_change_and_on_schedule(
        workspace: Workspace, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "minutes.txt").write_text("council minutes\n")
    workspace.config["daemon"]["hostname"] = "records-01"
    workspace.config["fleet"] = {"valid_for": "10m"}  # no publish_schedule: start + changes
    workspace.add_agency("planning")
    workspace.add_directory_source("planning", "docs", [data], schedule="daily", watch=False)
    summary = workspace.state_dir / "repos" / "planning" / "fleet" / "records-01.json"
    ring = tmp_path / "ring"
    ring.mkdir()

    def current() -> dict[str, Any]:
        judged = judge(summary.read_bytes(), Keyring.load(ring), now=time.time())
        assert judged.trust is Trust.TRUSTED, judged.reason
        report = json.loads(summary.read_bytes())["report"]
        assert isinstance(report, dict)
        return report

    daemon = DaemonProcess(workspace)
    try:
        daemon.wait_ready()
        wait_for(summary.exists, 30, "the start-up publication")
        (ring / "records-01.pem").write_bytes(
            (workspace.state_dir / KEY_DIR / PUBLIC_KEY_FILE).read_bytes())
        # The start-up backup changes the verdict's findings: published again, unasked.
        def after_backup() -> dict[str, Any] | None:
            report = current()
            return report if report["findings"] == ["never-checked", "never-drilled"] else None

        changed = wait_for(after_backup, 60, "the publication after the first backup")
        assert changed["verdict"] == "unknown" and _published(daemon) >= 2
        first_sequence = changed["sequence"]
        assert isinstance(first_sequence, int)
        settled = _published(daemon)
        time.sleep(1.5)
        assert _published(daemon) == settled  # nothing changed, no schedule: quiet

        workspace.config["fleet"]["publish_schedule"] = "every 1s"
        workspace.write()
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: _published(daemon) >= settled + 2, 30, "scheduled publications")
        later = current()["sequence"]
        assert isinstance(later, int) and later > first_sequence
    finally:
        assert daemon.stop() == 0
