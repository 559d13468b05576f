"""Progress lines for backup and restore: a redrawn line on a terminal, plain lines (at most one
every few seconds) otherwise."""

from __future__ import annotations

import time
from typing import TextIO

from drbackup.cli.output import human_bytes
from drbackup.engine import Progress


class ProgressPrinter:
    def __init__(self, stream: TextIO, label: str, *, plain_interval: float = 5.0):
        self.stream = stream
        self.label = label
        self.tty = stream.isatty()
        self.plain_interval = plain_interval
        self._last = 0.0
        self._drawn = False

    def update(self, progress: Progress) -> None:
        now = time.monotonic()
        if not self.tty and now - self._last < self.plain_interval:
            return
        self._last = now
        eta = f", ETA {int(progress.seconds_remaining)}s" if progress.seconds_remaining else ""
        text = (f"{self.label}: {progress.percent_done * 100:5.1f}% "
                f"{human_bytes(progress.bytes_done)}/{human_bytes(progress.total_bytes)} "
                f"{progress.files_done}/{progress.total_files} files{eta}")
        if self.tty:
            self.stream.write("\r\x1b[K" + text)
            self._drawn = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
