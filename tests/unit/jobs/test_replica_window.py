"""A replica's copy window (`copy_window`): how long a copy may run now, spanning midnight."""

from __future__ import annotations

from datetime import datetime

import pytest

from drbackup.config.models.stores import parse_window
from drbackup.jobs.replica_site import next_opening, window_seconds_left


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 12, 7, hour, minute, second).astimezone()


@pytest.mark.parametrize(("window", "now", "left"), [
    (None, at(12), None),
    ("08:00-18:00", at(12), 6 * 3600.0),
    ("08:00-18:00", at(18), 0.0),
    ("08:00-18:00", at(7, 59, 59), 0.0),
    ("20:00-06:00", at(12), 0.0),
    ("20:00-06:00", at(22), 8 * 3600.0),
    ("20:00-06:00", at(5, 59, 57), 3.0),
    ("20:00-06:00", at(0), 6 * 3600.0),
])
def test_seconds_left_in_the_window(window: str | None, now: datetime,
                                    left: float | None) -> None:
    assert window_seconds_left(window, now) == left


def test_next_opening_is_today_or_tomorrow() -> None:
    assert next_opening("20:00-06:00", at(12)) == at(20)
    assert next_opening("08:00-18:00", at(19)).day == 8


@pytest.mark.parametrize("text", ["8-18", "25:00-06:00", "10:00-10:00", "10:00 - 11:00x"])
def test_a_malformed_window_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="copy_window"):
        parse_window(text)
