"""A tiny tmpfs for disk-full tests, mounted by the test itself, and a filler that fills it.

Mounting needs root or CAP_SYS_ADMIN: where it is not permitted the test is skipped with that
reason (never silently passed)."""

from __future__ import annotations

import errno
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from drbackup.engine import RepoTarget
from tests.support.workspace import Workspace


@contextmanager
def tiny_tmpfs(mountpoint: Path, size: str = "2m") -> Iterator[Path]:
    """Mount a tmpfs of `size` at mountpoint (created) for the block; unmounted after."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                              str(mountpoint)], capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'not root'}): "
                    "the disk-full tests need 'mount -t tmpfs' (root or CAP_SYS_ADMIN)")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False, capture_output=True)


def fill(mountpoint: Path) -> Path:
    """Write a filler file until the filesystem is full; returns it (delete it to free)."""
    filler = mountpoint / f"filler-{uuid.uuid4().hex[:6]}"
    chunk = b"\0" * 65536
    with filler.open("wb", buffering=0) as handle:
        while True:
            try:
                handle.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    break
                chunk = chunk[: len(chunk) // 2]
    return filler


def agency_on_tiny_fs(workspace: Workspace, tiny_fs: Path, tmp_path: Path, *, files: int,
                      **source: str) -> tuple[Path, RepoTarget]:
    """Agency "planning" whose state and cache directories are on the tiny filesystem and whose
    repository is on the ordinary disk, with a directory source "documents" of `files` small
    files (`source`: extra source settings). Returns the data folder and the repository."""
    data = tmp_path / "data"
    data.mkdir()
    for index in range(files):
        (data / f"file-{index:03d}.txt").write_text(f"record {index}\n" * 100)
    workspace.config["daemon"]["state_dir"] = str(tiny_fs / "state")
    workspace.config["daemon"]["cache_dir"] = str(tiny_fs / "cache")
    workspace.config["stores"]["local"] = {"path": str(tmp_path / "repos")}
    workspace.add_agency("planning")
    workspace.add_directory_source("planning", "documents", [data], **source)
    return data, RepoTarget(str(tmp_path / "repos" / "planning"),
                            workspace.root / "secrets" / "planning.password")
