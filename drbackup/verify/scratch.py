"""Scratch space for restore drills: <state_dir>/scratch/<name>/, always removed afterwards.

A drill holds an exclusive flock on <name>.lock while it uses <name>/. When a drill process is
killed, the kernel drops the lock, so `clean_stale_scratch` (run at daemon start and at the
start of every verify run) can tell leftovers from a drill still running elsewhere. A leftover
may hold a running database server (a drill's `drill_target = "local-instance"`): it is
stopped before its directory is removed (`verify.leftovers.stop_servers_under`).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from drbackup.verify.leftovers import stop_servers_under

log = logging.getLogger(__name__)
SCRATCH_DIR = "scratch"


def scratch_root(state_dir: Path) -> Path:
    return state_dir / SCRATCH_DIR


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        # A restore may leave read-only directories; make them writable so rmtree can empty them.
        for root, dirs, _files in os.walk(path):
            for name in dirs:
                with contextlib.suppress(OSError):
                    os.chmod(os.path.join(root, name), 0o700)
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def scratch_space(state_dir: Path, name: str) -> Iterator[Path]:
    """A fresh, locked scratch directory, removed on exit whatever happens."""
    root = scratch_root(state_dir)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock_path = root / f"{name}.lock"
    directory = root / name
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _remove(directory)
        directory.mkdir(mode=0o700)
        try:
            yield directory
        finally:
            _remove(directory)
            lock_path.unlink(missing_ok=True)
    finally:
        os.close(fd)


def clean_stale_scratch(state_dir: Path) -> list[Path]:
    """Remove scratch directories no live drill holds (leftovers of a killed drill).
    Returns what was removed."""
    root = scratch_root(state_dir)
    if not root.is_dir():
        return []
    removed: list[Path] = []
    for entry in sorted(root.iterdir()):
        if entry.suffix == ".lock":
            continue
        lock_path = root / f"{entry.name}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a drill is using it right now
            if entry.is_dir() and not entry.is_symlink():
                # A drill's local database instance outlives a killed drill: stop it first.
                stop_servers_under(entry)
            _remove(entry)
            lock_path.unlink(missing_ok=True)
            removed.append(entry)
            log.warning("removed leftover drill scratch space %s", entry)
        finally:
            os.close(fd)
    for lock_path in root.glob("*.lock"):
        if not (root / lock_path.stem).exists():
            fd = os.open(lock_path, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                lock_path.unlink(missing_ok=True)
            except BlockingIOError:
                pass
            finally:
                os.close(fd)
    return removed
