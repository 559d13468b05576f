"""Schedule strings of the config: "hourly", "daily", "daily 02:00", "weekly", "every 15m",
"every 2s", or a 5-field cron expression ("30 2 * * 1-5").

Parsing lives with the config (a bad schedule must fail `drbackup config check`, and the config
layer imports nothing above it); computing the next run, with per-source jitter, is done by
drbackup/daemon/schedule.py from the parsed form here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from drbackup.config.units import parse_duration

_DAILY = re.compile(r"daily(?:\s+(?:at\s+)?(\d{1,2}):(\d{2}))?")
_EVERY = re.compile(r"every\s+(.+)")
_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
                ("day of week", 0, 7))
MIN_INTERVAL = timedelta(seconds=1)
HELP = ("use 'hourly', 'daily', 'daily HH:MM', 'weekly', 'every <duration>' (e.g. 'every 15m') "
        "or a 5-field cron expression such as '30 2 * * 1-5'")


@dataclass(frozen=True)
class Interval:
    """Every `period`, counted from the Unix epoch (so runs line up across restarts)."""

    period: timedelta


@dataclass(frozen=True)
class Cron:
    """Matching minutes of a cron expression, in local time."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday … 6 = Saturday
    day_restricted: bool
    weekday_restricted: bool
    text: str

    def matches(self, when: datetime) -> bool:
        if when.minute not in self.minutes or when.hour not in self.hours:
            return False
        if when.month not in self.months:
            return False
        return self.day_matches(when)

    def day_matches(self, when: datetime) -> bool:
        day_ok = when.day in self.days
        weekday_ok = (when.isoweekday() % 7) in self.weekdays
        # cron(5): when both day fields are restricted, either one matching is enough.
        if self.day_restricted and self.weekday_restricted:
            return day_ok or weekday_ok
        return day_ok and weekday_ok


ParsedSchedule = Interval | Cron


def _cron_field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"cron {name} step {step_text!r} is not a positive number")
            step = int(step_text)
        if part == "*":
            start, end = low, high
        elif "-" in part:
            first, last = part.split("-", 1)
            if not first.isdigit() or not last.isdigit():
                raise ValueError(f"cron {name} range {part!r} is not numeric")
            start, end = int(first), int(last)
        elif part.isdigit():
            start = int(part)
            end = high if step > 1 else start
        else:
            raise ValueError(f"cron {name} value {part!r} is not a number, range or '*'")
        if start < low or end > high or start > end:
            raise ValueError(f"cron {name} {part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def parse_cron(text: str) -> Cron:
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"cron expression {text!r} needs 5 fields, has {len(fields)}")
    parsed = [_cron_field(f, name, low, high)
              for f, (name, low, high) in zip(fields, _CRON_FIELDS, strict=True)]
    weekdays = frozenset(d % 7 for d in parsed[4])
    return Cron(parsed[0], parsed[1], parsed[2], parsed[3], weekdays,
                day_restricted=fields[2] != "*", weekday_restricted=fields[4] != "*",
                text=" ".join(fields))


def parse_schedule(text: str) -> ParsedSchedule:
    """Parse a schedule string. Raises ValueError naming what is wrong and the accepted forms."""
    value = " ".join(text.strip().lower().split())
    if value == "hourly":
        return Cron(frozenset({0}), frozenset(range(24)), frozenset(range(1, 32)),
                    frozenset(range(1, 13)), frozenset(range(7)), False, False, "0 * * * *")
    if value == "weekly":
        return parse_cron("0 0 * * 0")
    match = _DAILY.fullmatch(value)
    if match:
        hour, minute = (int(match.group(1)), int(match.group(2))) if match.group(1) else (0, 0)
        if hour > 23 or minute > 59:
            raise ValueError(f"schedule {text!r}: {hour}:{minute:02d} is not a time of day")
        return parse_cron(f"{minute} {hour} * * *")
    match = _EVERY.fullmatch(value)
    if match:
        try:
            period = parse_duration(match.group(1))
        except ValueError as exc:
            raise ValueError(f"schedule {text!r}: {exc}") from None
        if period < MIN_INTERVAL:
            raise ValueError(f"schedule {text!r}: the interval must be at least 1s")
        return Interval(period)
    if len(value.split()) == 5:
        try:
            return parse_cron(value)
        except ValueError as exc:
            raise ValueError(f"schedule {text!r}: {exc}; {HELP}") from None
    raise ValueError(f"schedule {text!r} is not understood: {HELP}")


def validate_schedule(value: str | None) -> str | None:
    """Pydantic validator: keep the text, reject what parse_schedule rejects."""
    if value is not None:
        parse_schedule(value)
    return value
