"""Sampling every process's argv from /proc while a test runs: how a test proves that no secret
ever appeared on a command line (any user on the host can read /proc/*/cmdline)."""

from __future__ import annotations

import os
import threading
from types import TracebackType


def read_cmdline(pid: str) -> tuple[str, ...] | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            raw = handle.read()
    except OSError:  # gone, or a kernel thread we may not read
        return None
    if not raw:
        return None
    return tuple(part.decode("utf-8", errors="replace") for part in raw.rstrip(b"\0").split(b"\0"))


class ArgvSampler:
    """A background thread that reads /proc/*/cmdline of all processes every `interval` seconds
    and keeps every distinct argv it saw. Use as a context manager."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.seen: set[tuple[str, ...]] = set()
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="argv-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    argv = read_cmdline(pid)
                    if argv is not None:
                        self.seen.add(argv)
            self.polls += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> ArgvSampler:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def matching(self, *words: str) -> list[tuple[str, ...]]:
        """Sampled argvs that contain every word as (part of) some argument."""
        return [argv for argv in self.seen
                if all(any(word in arg for arg in argv) for word in words)]

    def hits(self, secret: str) -> list[tuple[str, ...]]:
        return [argv for argv in self.seen if any(secret in arg for arg in argv)]
