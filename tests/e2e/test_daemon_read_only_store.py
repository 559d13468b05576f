"""A local store the unit leaves read-only (ProtectSystem=strict without ReadWritePaths=): the
daemon says so at start in one line naming the drop-in to add, instead of leaving every backup
to fail on restic's EROFS lines. A real read-only bind mount stands for the unit's."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from drbackup.config.unit import DROP_IN
from tests.support.daemon import DaemonProcess
from tests.support.workspace import Workspace


def test_the_daemon_names_the_read_write_paths_drop_in_for_a_read_only_store(
        workspace: Workspace, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    (disk / "repos").mkdir(parents=True)
    data = tmp_path / "data"
    data.mkdir()
    workspace.config["stores"]["disk"] = {"path": str(disk / "repos")}
    workspace.add_agency("planning", store="disk")
    workspace.add_directory_source("planning", "docs", [data])
    done = subprocess.run(["mount", "--bind", str(disk), str(disk)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot make a read-only bind mount here: {done.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(disk)], check=True)
        daemon = DaemonProcess(workspace, env={"INVOCATION_ID": "1" * 32})
        try:
            daemon.wait_ready()
            (line,) = [e["msg"] for e in daemon.events("store_unusable")
                       if "read-only" in e.get("msg", "")]
        finally:
            daemon.stop()
    finally:
        subprocess.run(["umount", str(disk)], check=True)
    assert f"ReadWritePaths={disk / 'repos'}" in line and DROP_IN in line
    assert "\n" not in line
