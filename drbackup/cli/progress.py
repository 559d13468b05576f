"""Progress lines for backup and restore: a redrawn line on a terminal, plain lines otherwise, or
JSON lines for machines.

restic sends a status message every 2 s (the engine sets RESTIC_PROGRESS_FPS=0.5). On a non-TTY
we print at most one line per `plain_interval` seconds of restic's own elapsed-time clock (so a
busy machine that delivers several statuses at once cannot stretch the gaps); 3 s means every
other status, so lines are 4 s apart while restic reports.
"""

from __future__ import annotations

import json
import time
from typing import TextIO

from drbackup.cli.output import human_bytes
from drbackup.engine import Progress

PLAIN_INTERVAL = 3.0


def format_seconds(seconds: float) -> str:
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def eta_seconds(progress: Progress) -> float | None:
    """restic's own estimate (backup), else one from the rate so far (restore sends none)."""
    if progress.seconds_remaining:
        return progress.seconds_remaining
    fraction = progress.percent_done
    if 0 < fraction < 1 and progress.seconds_elapsed > 0:
        return progress.seconds_elapsed * (1 - fraction) / fraction
    return None


class ProgressPrinter:
    def __init__(self, stream: TextIO, label: str, *, plain_interval: float = PLAIN_INTERVAL,
                 json_lines: bool = False, extra: dict[str, str] | None = None):
        self.stream = stream
        self.label = label
        self.tty = stream.isatty() and not json_lines
        self.json_lines = json_lines
        self.extra = extra or {}
        self.plain_interval = plain_interval
        self._last: float | None = None
        self._started = time.monotonic()
        self._drawn = False

    def text(self, progress: Progress) -> str:
        eta = eta_seconds(progress)
        eta_text = f", ETA {format_seconds(eta)}" if eta is not None else ""
        return (f"{self.label}: {progress.percent_done * 100:5.1f}% "
                f"{human_bytes(progress.bytes_done)}/{human_bytes(progress.total_bytes)} "
                f"{progress.files_done}/{progress.total_files} files, "
                f"elapsed {format_seconds(progress.seconds_elapsed)}{eta_text}")

    def update(self, progress: Progress) -> None:
        if self.json_lines:
            eta = eta_seconds(progress)
            record = {"event": "progress", **self.extra,
                      "percent_done": round(progress.percent_done, 4),
                      "bytes_done": progress.bytes_done, "total_bytes": progress.total_bytes,
                      "files_done": progress.files_done, "total_files": progress.total_files,
                      "seconds_elapsed": progress.seconds_elapsed,
                      "eta_seconds": round(eta, 1) if eta is not None else None,
                      "error_count": progress.error_count}
            self.stream.write(json.dumps(record, sort_keys=True) + "\n")
            self.stream.flush()
            return
        # restic's clock when it sends one, else ours (a status without seconds_elapsed).
        now = progress.seconds_elapsed or (time.monotonic() - self._started)
        if not self.tty and self._last is not None and now - self._last < self.plain_interval:
            return
        self._last = now
        text = self.text(progress)
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
