"""Which process owns a run: `<boot id>:<pid>:<start time>`, so a run whose process is gone
(SIGKILL, the OOM killer, a power cut) can be told from one still at work, even after the pid
was reused or the host rebooted."""

from __future__ import annotations

import errno
import os
from functools import cache
from pathlib import Path

_PROC = Path("/proc")


@cache
def _boot_id() -> str:
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "-"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or
    None where it cannot be read (no /proc, or hidden by ProtectProc=invisible)."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


def this_process() -> str:
    """The owner token of the calling process (computed per call: a forked child is another)."""
    pid = os.getpid()
    return f"{_boot_id()}:{pid}:{_start_time(pid) or '-'}"


def owner_alive(owner: str) -> bool:
    """Whether the process an owner token names still runs. Unknown forms count as alive: only
    a run proven dead is closed."""
    parts = owner.split(":")
    if len(parts) != 3 or not parts[1].isdigit():
        return True
    boot, pid_text, started = parts
    if boot != "-" and _boot_id() != "-" and boot != _boot_id():
        return False  # the host rebooted since: no process of that boot survives
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except OSError as exc:
        if exc.errno == errno.ESRCH:
            return False
        # EPERM: a process of another user holds the pid (the daemon may not signal a root
        # one-shot command): it exists; its start time tells whether it is the same one.
    now = _start_time(pid)
    if now is None or started == "-":
        return True  # hidden (ProtectProc=invisible) or unknown: cannot prove it gone
    return now == started
