"""Leftovers of killed drills: the processes (a drill's database server, a stray client) whose
command line names a directory, and stopping them before that directory is removed."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from pathlib import Path

from drbackup.verify.instance import STOP_TIMEOUT

log = logging.getLogger(__name__)


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def processes_under(directory: Path) -> list[int]:
    """Pids of processes whose command line names `directory` or a path inside it (the
    server of a drill instance: postgres -D <dir>/data, mariadbd --datadir=<dir>/data)."""
    inside = str(directory).rstrip("/") + "/"
    found = []
    own = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        args = _cmdline(int(entry.name))
        if any(inside in arg or arg == inside[:-1] for arg in args[1:]):
            found.append(int(entry.name))
    return sorted(found)


def stop_servers_under(directory: Path, timeout: float = STOP_TIMEOUT) -> list[int]:
    """Stop what a killed drill left running in `directory` (its server, a stray client):
    SIGINT to a PostgreSQL postmaster (fast shutdown), SIGTERM to anything else, SIGKILL to
    what is still there after `timeout`. Returns the pids found."""
    pids = processes_under(directory)
    for pid in pids:
        program = Path(_cmdline(pid)[0]).name if _cmdline(pid) else ""
        signum = signal.SIGINT if program == "postgres" else signal.SIGTERM
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)
        log.warning("stopping leftover drill server %s (pid %d) in %s", program, pid, directory)
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pids
