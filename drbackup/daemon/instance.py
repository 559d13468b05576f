"""One daemon per state directory (flock), and the status file it keeps for `drbackup status`."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Any

from drbackup.errors import AlreadyRunningError, StateError

LOCK_FILE = "daemon.lock"
STATUS_FILE = "daemon-status.json"


class InstanceLock:
    def __init__(self, state_dir: Path):
        self.path = state_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise AlreadyRunningError naming the holder."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StateError(f"cannot create the lock file {self.path}: {exc.strerror}",
                             "check daemon.state_dir exists and is writable by this user"
                             ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunningError(
                f"another drbackup daemon (pid {holder}) already uses state dir "
                f"{self.path.parent}",
                "stop it first ('systemctl stop drbackup'), or give this one another "
                "daemon.state_dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def running_daemon_pid(state_dir: Path) -> int | None:
    """The pid of the daemon holding the lock of `state_dir`, or None when none runs."""
    path = state_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def write_status(state_dir: Path, status: dict[str, Any]) -> None:
    path = state_dir / STATUS_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status, sort_keys=True, default=str))
    tmp.replace(path)


def read_status(state_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((state_dir / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
