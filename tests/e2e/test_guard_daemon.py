"""The ransomware guard in the running daemon (#16): a watched source is backed up clean;
then its files are encrypted in place and a ransom note dropped; the watch-triggered backup is
judged suspect and /metrics turns drbackup_guard_suspect and drbackup_guard_frozen to 1, which
the shipped alert DrBackupRansomwareSuspected fires on (its promtool test:
config/prometheus/tests/)."""

from __future__ import annotations

from pathlib import Path

from tests.support import formats
from tests.support.daemon import DaemonProcess
from tests.support.metrics import parse, scrape, wait_for
from tests.support.trees import office_tree
from tests.support.workspace import Workspace

LABELS = '{agency="planning",source="share"}'


def test_the_daemon_flags_an_attack_on_a_watched_source(workspace: Workspace,
                                                        tmp_path: Path) -> None:
    data = office_tree(tmp_path / "share", files=40)
    workspace.config["stores"]["local"] = {"path": str(tmp_path / "store")}
    workspace.add_agency("planning")
    workspace.add_directory_source("planning", "share", [data], debounce="1s")
    workspace.cli("repo", "init", check=True)
    daemon = DaemonProcess(workspace)
    try:
        daemon.wait_ready()
        url = daemon.metrics_url()

        def value(name: str, labels: str = LABELS) -> float | None:
            return parse(scrape(url)).get(f"{name}{labels}")

        assert wait_for(lambda: value("drbackup_guard_last_verdict_timestamp_seconds"),
                        timeout=90), daemon.log_text()
        assert value("drbackup_guard_suspect") == 0
        assert value("drbackup_guard_frozen", '{agency="planning"}') == 0

        for n, path in enumerate(sorted(p for p in data.rglob("*") if p.is_file())[:20]):
            path.write_bytes(formats.noise(path.stat().st_size, seed=500 + n))
        (data / "dept-1" / "README_DECRYPT.txt").write_text("send bitcoin\n")

        assert wait_for(lambda: value("drbackup_guard_suspect") == 1 or None, timeout=90), \
            daemon.log_text()
        assert value("drbackup_guard_frozen", '{agency="planning"}') == 1
        assert value("drbackup_guard_last_clean_timestamp_seconds")
        # The verdict reaches the state (and so the metrics) before the listing is saved and
        # the line is logged: wait for the line rather than read the log at once.
        assert wait_for(lambda: any("is SUSPECT" in str(line.get("msg"))
                                    for line in daemon.logs()) or None, timeout=30)
    finally:
        daemon.stop()
