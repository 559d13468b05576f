from __future__ import annotations

from datetime import timedelta

import pytest

from drbackup.config.units import format_duration, parse_duration, parse_size


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("15m", 900), ("1h30m", 5400), ("7d", 604800), ("1w", 604800), (90, 90),
    ("500ms", 0.5), ("1.5h", 5400),
])
def test_parse_duration(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["", "soon", "5 parsecs", "-1s", True, [1], "1h junk"])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_format_round_trips() -> None:
    for text in ("1d", "1h30m", "45s", "2d3h4m5s", "500ms"):
        assert format_duration(parse_duration(text)) == text


@pytest.mark.parametrize(("text", "size"), [
    ("1KiB", 1024), ("200MB", 200_000_000), ("5GiB", 5 * 1024**3), (10, 10), ("1k", 1000),
])
def test_parse_size(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["lots", "-5", "5 XB", None, 1.5])
def test_bad_sizes(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_size(bad)
