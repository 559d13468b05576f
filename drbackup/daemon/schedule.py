"""When a schedule fires next: interval schedules line up on the Unix epoch, cron schedules on
local wall-clock minutes, and each source gets a fixed jitter (a hash of its name) so that many
agencies on the same schedule do not start at the same second. The same source always gets the
same jitter, so runs stay evenly spaced across restarts."""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta

from drbackup.config.schedule import Cron, Interval, ParsedSchedule, parse_schedule

JITTER_SHARE = 0.1  # jitter is at most this share of the schedule's interval
_CRON_JITTER_BASE = 3600.0  # cron schedules: treat as at most hourly for the jitter cap
_MAX_CRON_STEPS = 5000


def jitter_fraction(key: str) -> float:
    """A stable number in [0, 1) for a key such as "planning/documents"."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def jitter_seconds(schedule: ParsedSchedule, key: str, max_jitter: float) -> float:
    base = (schedule.period.total_seconds() if isinstance(schedule, Interval)
            else _CRON_JITTER_BASE)
    return jitter_fraction(key) * min(max_jitter, JITTER_SHARE * base)


def _local(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC).astimezone()


def cron_next(cron: Cron, after: float) -> float:
    """The start of the first matching minute strictly after `after` (local time)."""
    when = _local(math.floor(after / 60) * 60 + 60)
    for _ in range(_MAX_CRON_STEPS):
        if when.month not in cron.months:
            year, month = (when.year + 1, 1) if when.month == 12 else (when.year, when.month + 1)
            when = when.replace(year=year, month=month, day=1, hour=0, minute=0).astimezone()
            continue
        if not cron.day_matches(when):
            when = (when.replace(hour=0, minute=0) + timedelta(days=1)).astimezone()
            continue
        if when.hour not in cron.hours:
            when = (when.replace(minute=0) + timedelta(hours=1)).astimezone()
            continue
        if when.minute not in cron.minutes:
            when = (when + timedelta(minutes=1)).astimezone()
            continue
        return when.timestamp()
    raise ValueError(f"cron expression {cron.text!r} never matches")


def next_run(schedule: ParsedSchedule | str, after: float, *, key: str = "",
             max_jitter: float = 0.0) -> float:
    """The first time strictly after `after` when the schedule fires for `key` (unix time)."""
    parsed = parse_schedule(schedule) if isinstance(schedule, str) else schedule
    jitter = jitter_seconds(parsed, key, max_jitter)
    if isinstance(parsed, Interval):
        period = parsed.period.total_seconds()
        slot = math.floor((after - jitter) / period) + 1
        return slot * period + jitter
    return cron_next(parsed, after - jitter) + jitter


__all__ = ["cron_next", "jitter_fraction", "jitter_seconds", "next_run", "parse_schedule"]
