"""Parsing of the human units used in the config: durations ("90s", "15m", "1h30m", "7d") and
sizes ("1KiB", "200MB")."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*", re.IGNORECASE)
_SIZE_FACTORS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "ki": 1024, "kib": 1024,
    "m": 1000**2, "mb": 1000**2, "mi": 1024**2, "mib": 1024**2,
    "g": 1000**3, "gb": 1000**3, "gi": 1024**3, "gib": 1024**3,
    "t": 1000**4, "tb": 1000**4, "ti": 1024**4, "tib": 1024**4,
}


def parse_duration(value: object) -> timedelta:
    """Parse "1h30m", "90s", "7d" or a number of seconds. Raises ValueError on anything else."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as \"30s\", \"15m\", \"1h\", \"7d\"")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return _seconds(value, value)
    if not isinstance(value, str):
        raise ValueError("expected a duration such as \"30s\", \"15m\", \"1h\", \"7d\"")
    text = value.strip().lower().replace(" ", "")
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_SECONDS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(
            f"{value!r} is not a duration; use e.g. \"30s\", \"15m\", \"1h30m\", \"7d\"")
    return _seconds(total, value)


# timedelta's own limit is ~2.7 million years; anything near it is a typo, and beyond it
# timedelta raises OverflowError, which pydantic would not turn into a config error.
_MAX_DURATION_SECONDS = 1000 * 365 * 86400


def _seconds(seconds: float, original: object) -> timedelta:
    if seconds != seconds:  # NaN (TOML allows `nan`)
        raise ValueError("a duration must be a number of seconds or e.g. \"15m\", not nan")
    if seconds > _MAX_DURATION_SECONDS:
        raise ValueError(f"{original!r} is longer than 1000 years; use e.g. \"30d\" or \"1h\"")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest exact spelling of a duration in the units parse_duration reads."""
    seconds = value.total_seconds()
    if seconds == 0:
        return "0s"
    if seconds != int(seconds):
        return f"{round(seconds * 1000)}ms"
    remaining = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if remaining >= size:
            parts.append(f"{remaining // size}{unit}")
            remaining %= size
    return "".join(parts)


def short_duration(seconds: float | None) -> str:
    """A short, language-neutral duration: 42s, 5m, 3.2h, 4.1d; '-' when unknown."""
    if seconds is None:
        return "-"
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f}d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    if seconds >= 60:
        return f"{seconds / 60:.0f}m"
    return f"{seconds:.0f}s"


def parse_size(value: object) -> int:
    """Parse "1KiB", "200MB", "5G" or a number of bytes. Raises ValueError on anything else."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as \"1KiB\" or \"200MB\"")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    if not isinstance(value, str):
        raise ValueError("expected a size such as \"1KiB\" or \"200MB\"")
    match = _SIZE.fullmatch(value)
    if not match:
        raise ValueError(
            f"{value!r} is not a size; use e.g. \"1KiB\", \"200MB\", \"5GiB\"")
    size = float(match.group(1)) * _SIZE_FACTORS[match.group(2).lower()]
    if size > _MAX_SIZE_BYTES:
        raise ValueError(f"{value!r} is larger than 1 EiB; use e.g. \"200MB\" or \"5GiB\"")
    return int(size)


_MAX_SIZE_BYTES = float(1 << 60)


def _serialize_duration(value: timedelta) -> str:
    return format_duration(value)


def _check_duration(value: Any) -> timedelta:
    return parse_duration(value)


Duration = Annotated[
    timedelta,
    BeforeValidator(_check_duration),
    PlainSerializer(_serialize_duration, return_type=str),
]
"""A config duration: written as "15m", held as a timedelta."""

ByteSize = Annotated[int, BeforeValidator(parse_size)]
"""A config size: written as "200MB" or a byte count, held as an int of bytes."""
