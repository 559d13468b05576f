"""The pure part of bench/fleet_read.py: per-agency figures, the goals that say history changed
nothing, the extrapolation to 500 agencies."""

from __future__ import annotations

import pytest

from bench.fleet_read import TARGET_AGENCIES, Phase, results
from drbackup.jobs.fleet_report import ReadResult


def _phase(requests: int, bytes_read: int, seconds: float, agencies: int = 60) -> Phase:
    return Phase([seconds] * 3, 2.0, ReadResult([], [], requests, bytes_read), requests,
                 bytes_read + 1000, agencies, {"not-meeting": agencies})


HALF = _phase(61, 60_000, 0.61, agencies=30)


def test_unchanged_history_meets_the_goals_and_extrapolates_per_request() -> None:
    first, later = _phase(121, 120_000, 1.21), _phase(121, 120_000, 1.5)
    every = results(HALF, first, later, 6, 10, 20, 50)
    rows = {r.name.split(",")[0] + ("+" if "after" in r.name else ""): r for r in every}
    assert rows["requests per agency (reader's count)"].median == pytest.approx(121 / 60)
    assert rows["requests per agency+"].met is True
    assert rows["bytes read per agency+"].met is True
    slope, per_request = (r for r in every if r.name.startswith("extrapolated"))
    assert slope.median == pytest.approx(1.21 + 0.02 * (TARGET_AGENCIES - 60))
    assert per_request.median == pytest.approx(0.01 * (1 + 2 * TARGET_AGENCIES))


def test_a_report_that_grows_with_history_misses_them() -> None:
    rows = results(HALF, _phase(121, 120_000, 1.0), _phase(221, 400_000, 2.0), 6, 10, 20, 50)
    judged = [r for r in rows if r.goal is not None]
    assert len(judged) == 2 and all(r.met is False for r in judged)
