"""Progress output: plain lines are throttled but never more than ~4 s apart with restic's 2 s
status cadence; JSON lines carry every status; a TTY gets a redrawn line."""

from __future__ import annotations

import io
import itertools
import json

import pytest

from drbackup.cli import progress as progress_module
from drbackup.cli.progress import ProgressPrinter, eta_seconds, format_seconds
from drbackup.engine import Progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Clock:
    def __init__(self, now: list[float]):
        self.now = now

    def monotonic(self) -> float:
        return self.now[0]


def _status(elapsed: float, fraction: float) -> Progress:
    return Progress(percent_done=fraction, seconds_elapsed=elapsed, total_files=10,
                    files_done=int(10 * fraction), total_bytes=1000,
                    bytes_done=int(1000 * fraction))


def test_plain_lines_at_restics_cadence() -> None:
    stream = io.StringIO()
    printer = ProgressPrinter(stream, "restore abcd1234")
    for tick in range(1, 16):  # restic: one status every 2 s (RESTIC_PROGRESS_FPS=0.5)
        printer.update(_status(2 * tick, tick / 16))
    lines = stream.getvalue().splitlines()
    elapsed = [int(line.split("elapsed 0:")[1][:2]) for line in lines]
    assert elapsed[0] == 2 and all(b - a <= 4 for a, b in itertools.pairwise(elapsed))
    assert len(lines) == 8
    assert lines[0].startswith("restore abcd1234:   6.2% ") and "ETA 0:30" in lines[0]
    assert "\r" not in stream.getvalue()


def test_statuses_without_elapsed_use_the_local_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(progress_module, "time", _Clock(clock))
    stream = io.StringIO()
    printer = ProgressPrinter(stream, "backup")
    for tick in range(10):
        clock[0] = 100.0 + tick
        printer.update(Progress(percent_done=tick / 10))
    assert len(stream.getvalue().splitlines()) == 4  # at 0, 3, 6, 9 s


def test_json_lines_and_tty() -> None:
    stream = io.StringIO()
    printer = ProgressPrinter(stream, "x", json_lines=True, extra={"snapshot_id": "ab"})
    printer.update(_status(4, 0.5))
    printer.update(_status(6, 0.75))
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [r["percent_done"] for r in records] == [0.5, 0.75]
    assert records[0]["event"] == "progress" and records[0]["snapshot_id"] == "ab"
    assert records[0]["eta_seconds"] == 4.0
    tty = _Tty()
    drawn = ProgressPrinter(tty, "y")
    drawn.update(_status(2, 0.1))
    drawn.update(_status(3, 0.2))
    drawn.finish()
    assert tty.getvalue().count("\r\x1b[K") == 3 and "\n" not in tty.getvalue()


def test_eta_and_format() -> None:
    assert eta_seconds(Progress(seconds_remaining=12)) == 12
    assert eta_seconds(Progress(percent_done=0.0, seconds_elapsed=5)) is None
    assert format_seconds(3725) == "1:02:05" and format_seconds(59.6) == "1:00"
