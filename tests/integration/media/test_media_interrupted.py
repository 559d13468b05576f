"""An export that does not end (#19 §1): the medium fills up, the exporting process is
killed with SIGKILL half-way, or the medium is pulled out (lazily unmounted) mid-copy. None
leaves a medium marked verified that is not: `verify` says incomplete (exit 27), the
catalogue does not call it verified, and the next export completes it. One real ext4 image
for the module (a plain directory where no loop device can be had, with a warning saying
so)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.media import medium as mounted_medium
from tests.support.media import pull, replug
from tests.support.offsite import small_tree
from tests.support.tinyfs import fill
from tests.support.workspace import Workspace


@dataclass
class Bench:
    workspace: Workspace
    medium: Path
    what: str
    data: Path


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory, restic_binary: str) -> Iterator[Bench]:
    root = tmp_path_factory.mktemp("media-interrupted")
    workspace = Workspace(root / "host")
    workspace.config["daemon"]["restic"] = restic_binary
    workspace.config["stores"]["local"] = {"path": str(root / "repos")}
    workspace.add_agency("planning", guard={"enabled": False})
    data = small_tree(root / "data")
    (data / "big.bin").write_bytes(os.urandom(6 * 1024 * 1024))
    workspace.add_directory_source("planning", "documents", [data])
    workspace.cli("repo", "init", check=True)
    workspace.cli("backup", "--agency", "planning", check=True)
    with mounted_medium(root / "medium", "ext4", size_mib=48) as (medium, what):
        yield Bench(workspace, medium, what, data)


def _verify(bench: Bench) -> subprocess.CompletedProcess[str]:
    return bench.workspace.cli("media", "verify", str(bench.medium), "--no-restic-check")


def _catalogue(bench: Bench) -> list[dict[str, object]]:
    listed = bench.workspace.cli("--json", "media", "list")
    assert listed.returncode == 0, listed.stderr
    value = json.loads(listed.stdout)
    assert isinstance(value, list)
    return value


def test_a_full_medium_is_marked_incomplete_and_the_next_export_completes(bench: Bench
                                                                          ) -> None:
    print(f"medium: {bench.what}")
    filler = fill(bench.medium)
    # Room for the marker and restic's config, not for the packs.
    with filler.open("r+b") as handle:
        handle.truncate(max(0, filler.stat().st_size - 512 * 1024))
    failed = bench.workspace.cli("media", "export", "--agency", "planning", "--to",
                                 str(bench.medium), "--label", "disk-full")
    assert failed.returncode != 0, failed.stdout
    assert "Traceback" not in failed.stderr and "error:" in failed.stderr
    assert not any(m["state"] == "verified" for m in _catalogue(bench))
    verified = _verify(bench)
    assert verified.returncode == 27, verified.stdout + verified.stderr
    assert "did not finish" in verified.stderr
    filler.unlink()
    done = bench.workspace.cli("media", "export", "--agency", "planning", "--to",
                               str(bench.medium), "--label", "disk-full")
    assert done.returncode == 0, done.stderr
    assert _verify(bench).returncode == 0
    assert [m["state"] for m in _catalogue(bench)] == ["verified"]


def test_an_export_killed_half_way_is_marked_incomplete_and_completed_next_time(
        bench: Bench) -> None:
    # Runs after the full-medium test on the same medium, or alone on a blank one.
    (bench.data / "more.bin").write_bytes(os.urandom(6 * 1024 * 1024))
    bench.workspace.cli("backup", "--agency", "planning", check=True)
    bench.workspace.write()
    process = subprocess.Popen(
        [*bench.workspace.cli_argv(), "media", "export", "--agency", "planning", "--to",
         str(bench.medium), "--label", "disk-full"], env=bench.workspace.env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    marker = bench.medium / "drbackup-media.incomplete"
    deadline = time.monotonic() + 60
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # into the mirror, the read-back or restic check: before the manifest
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert marker.exists(), "the export ended before it could be killed"
    verified = _verify(bench)
    assert verified.returncode == 27, verified.stdout + verified.stderr
    assert not any(m["state"] == "verified" and len(m["snapshots"]) == 2  # type: ignore[arg-type]
                   for m in _catalogue(bench))
    done = bench.workspace.cli("--json", "media", "export", "--agency", "planning", "--to",
                               str(bench.medium))
    assert done.returncode == 0, done.stderr
    assert _verify(bench).returncode == 0
    [record] = _catalogue(bench)
    assert record["state"] == "verified" and len(record["snapshots"]) == 2  # type: ignore[arg-type]


def test_a_medium_pulled_mid_export_is_never_marked_verified_and_the_next_export_completes(
        bench: Bench) -> None:
    """umount -l mid-export (copy, read-back or check): the mount point is at once the
    host's empty directory, where restic and the read-back would carry on. Runs after the
    tests above, on the same medium (which then holds a verified copy: the pulled export
    must not replace it)."""
    if not bench.what.startswith("ext4"):
        pytest.skip(f"the medium is a {bench.what}: nothing to unmount")
    (bench.data / "pulled.bin").write_bytes(os.urandom(6 * 1024 * 1024))
    bench.workspace.cli("backup", "--agency", "planning", check=True)
    before = {m["label"]: m for m in _catalogue(bench)}
    bench.workspace.write()
    process = subprocess.Popen(
        [*bench.workspace.cli_argv(), "media", "export", "--agency", "planning", "--to",
         str(bench.medium), "--label", "disk-full"], env=bench.workspace.env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    marker = bench.medium / "drbackup-media.incomplete"
    deadline = time.monotonic() + 60
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # into the mirror, the read-back or restic check: before the manifest
    pull(bench.medium)
    _, stderr = process.communicate(timeout=300)
    print(f"the pulled export said: {stderr.strip()}")
    assert process.returncode != 0, "the export said done on a pulled medium"
    assert "Traceback" not in stderr and "error:" in stderr, stderr
    held_before = before.get("disk-full", {}).get("snapshots", [])
    previous = [str(s) for s in held_before] if isinstance(held_before, list) else []
    after = {m["label"]: m for m in _catalogue(bench)}
    # The catalogue has at most the copy verified before, not the one that did not finish.
    assert after.get("disk-full", {}).get("state") != "verified" or \
        after["disk-full"]["snapshots"] == previous
    assert replug(bench.medium, "ext4"), "cannot mount the medium's image again"
    verified = _verify(bench)
    assert verified.returncode == 27, verified.stdout + verified.stderr
    done = bench.workspace.cli("--json", "media", "export", "--agency", "planning", "--to",
                               str(bench.medium), "--label", "disk-full")
    assert done.returncode == 0, done.stderr
    [record] = _catalogue(bench)
    assert record["state"] == "verified"
    held = record["snapshots"]
    assert isinstance(held, list) and set(previous) < {str(s) for s in held}
