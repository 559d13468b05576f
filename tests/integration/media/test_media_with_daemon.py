"""`drbackup media export` while the daemon runs (#19 §5): the daemon backs up the agency on
its schedule (every second, new files arriving all the time) while an export of the same
agency copies from the same repository. The daemon's queue is not involved (a person plugs the
medium and runs the export); restic's locks let a backup and a copy share the repository, and
the export's media lock keeps media commands one at a time. Both succeed, the medium verifies
(every file, restic check --read-data), the repository checks clean. A real daemon process,
real restic, a local store; the medium is a plain directory (the file system is not what is
tested here: test_media_roundtrip.py and test_media_interrupted.py use real images)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from tests.support.daemon import DaemonProcess, runs, successes, wait_for
from tests.support.offsite import small_tree
from tests.support.workspace import Workspace


def _overlapping(ws: Workspace) -> list[dict[str, object]]:
    """The daemon's backups that ran while an export ran."""
    exports = [r for r in runs(ws, job="media-export") if r["finished_at"]]
    return [b for b in runs(ws) for e in exports
            if b["started_at"] < e["finished_at"] and (b["finished_at"] or 1e12) > e["started_at"]]


def test_export_meets_daemon_backups_of_the_same_agency(tmp_path: Path, restic_binary: str
                                                        ) -> None:
    ws = Workspace(tmp_path / "host")
    ws.config["daemon"]["restic"] = restic_binary
    ws.config["stores"]["local"] = {"path": str(tmp_path / "repos")}
    ws.add_agency("planning", guard={"enabled": False},
                  offline={"media_set": 1, "max_age": "7d"})
    data = small_tree(tmp_path / "data")
    (data / "big.bin").write_bytes(os.urandom(4 * 1024 * 1024))
    ws.add_directory_source("planning", "documents", [data], watch=False, schedule="every 1s")
    ws.cli("repo", "init", check=True)
    medium = tmp_path / "medium"
    medium.mkdir()
    stop = threading.Event()

    def keep_writing() -> None:  # so that every scheduled backup has something new
        count = 0
        while not stop.wait(0.3):
            (data / f"arrived-{count:04d}.bin").write_bytes(os.urandom(64 * 1024))
            count += 1

    writer = threading.Thread(target=keep_writing, daemon=True)
    daemon = DaemonProcess(ws)
    try:
        daemon.wait_ready()
        writer.start()
        wait_for(lambda: successes(ws, "planning", "documents"), 60, "a first daemon backup")
        for attempt in range(3):  # until an export has met a backup (the first, as a rule)
            label = ("--label", "disk-d") if attempt == 0 else ()
            exported = ws.cli("--json", "media", "export", "--agency", "planning", "--to",
                              str(medium), *label)
            assert exported.returncode == 0, exported.stdout + exported.stderr
            # A plain directory of the host's disk: the export says so (a medium not mounted).
            assert "not a mount point" in json.loads(exported.stdout)["notes"][0]
            if _overlapping(ws):
                break
        assert _overlapping(ws), "no daemon backup ran during an export"
    finally:
        stop.set()
        daemon.stop()
    # The backups that met an export all succeeded; none failed (one the daemon's stop cut
    # short may be recorded interrupted).
    assert all(r["result"] in ("success", "warning") for r in _overlapping(ws))
    failed = [(r["result"], r["error"]) for r in runs(ws) if r["result"] == "failed"]
    assert not failed, failed
    assert all(r["result"] == "success" for r in runs(ws, job="media-export"))
    verified = ws.cli("media", "verify", str(medium))  # with the password: restic check too
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "(restic check passed)" in verified.stdout
    checked = ws.cli("verify", "--agency", "planning", "--kind", "check", "--read-data")
    assert checked.returncode == 0, checked.stdout + checked.stderr
