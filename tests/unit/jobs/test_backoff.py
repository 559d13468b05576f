"""Backoff: exponential growth, the cap, reset on success, readiness by time."""

from __future__ import annotations

import pytest

from drbackup.jobs.backoff import Backoff


def test_delays_grow_exponentially_up_to_the_cap() -> None:
    backoff = Backoff(initial=10, factor=2, cap=75)
    waits = []
    now = 1000.0
    for _ in range(6):
        next_at = backoff.failure(now, "store down")
        waits.append(next_at - now)
        now = next_at
    assert waits == [10, 20, 40, 75, 75, 75]
    assert backoff.failures == 6
    assert backoff.last_error == "store down"


def test_ready_only_after_the_wait_and_success_resets() -> None:
    backoff = Backoff(initial=5, cap=60)
    assert backoff.ready(0) and not backoff.backing_off
    backoff.failure(100)
    assert not backoff.ready(104.9)
    assert backoff.remaining(103) == pytest.approx(2)
    assert backoff.ready(105)
    backoff.failure(105)
    assert backoff.next_attempt_at == 115
    backoff.success()
    assert backoff.ready(105) and backoff.failures == 0 and backoff.delay() == 0


def test_jitter_stays_within_bounds_and_cap() -> None:
    backoff = Backoff(initial=10, factor=2, cap=30, jitter=0.5)
    for expected in (10, 20, 30, 30):
        wait = backoff.failure(0) - 0
        assert expected <= wait <= min(30, expected * 1.5)


def test_huge_failure_counts_do_not_overflow() -> None:
    backoff = Backoff(initial=1, factor=10, cap=3600)
    assert backoff.delay(10_000) == 3600


@pytest.mark.parametrize("kwargs", [{"initial": 0}, {"initial": 10, "cap": 5},
                                    {"factor": 0.5}, {"jitter": 2}])
def test_bad_parameters_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="Backoff"):
        Backoff(**kwargs)  # type: ignore[arg-type]
