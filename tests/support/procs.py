"""Watching the processes a test spawns: a sampler of every /proc/*/cmdline."""

from __future__ import annotations

import threading
from pathlib import Path


def read_cmdlines() -> set[tuple[str, ...]]:
    """The argv of every process running now (those that vanish meanwhile are skipped)."""
    found: set[tuple[str, ...]] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if raw:
            found.add(tuple(part.decode("utf-8", "replace")
                            for part in raw.rstrip(b"\0").split(b"\0")))
    return found


class ArgvSampler:
    """Polls /proc/*/cmdline in a thread; `seen` holds every distinct argv observed."""

    def __init__(self, interval: float = 0.01):
        self.interval = interval
        self.seen: set[tuple[str, ...]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> ArgvSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.seen.update(read_cmdlines())
            self._stop.wait(self.interval)

    def commands_named(self, name: str) -> list[tuple[str, ...]]:
        return [argv for argv in self.seen if argv and Path(argv[0]).name == name]

    def containing(self, needle: str) -> list[tuple[str, ...]]:
        return [argv for argv in self.seen if any(needle in part for part in argv)]
