"""The bounded history a fleet summary carries per source (#20 item 3: the HTML report's small
charts of RPO and drill history), pure: built from plain times by jobs/fleet_publish.py, parsed
strictly by fleet/summary.py.

Shape, in a source of the summary (absent or null from an older drbackup: "no history"):
    "history": {"window_seconds": 2592000.0,
                "rpo": [[<slice end, unix s>, <worst RPO in the slice, s>], ...],
                "drills": [[<finished, unix s>, "ok"|"failed"|"suspect", <RTO s>|null], ...]}

RPO over time: the window before publication ([fleet] history_window, 30 days by default) is cut
into RPO_SLICES equal slices (a day each for 30 days); each point is the worst RPO (the age of the
newest good backup) anywhere in its slice: the gap between two consecutive good backups when the
second falls in it, and the age at the slice's end (the last slice ends at publication: the age
then). A slice before the first good backup ever has no point. Worst per slice, not a sample of
backup times: an hourly backup makes 720 backups a month, and a sample would hide the one gap that
breached the RPO.
Drills: the newest MAX_DRILLS finished drills in the window, oldest first, each with a fixed
code and its measured RTO estimate. Only times, figures and codes: no file name, no error text.

Bounded: at most 30 + 30 points of whole seconds (RTO to 0.1 s), about 1.3 KB of compact JSON per
source at most as published (30 drills; ~0.6 KB with the RPO alone); even with the longest numbers
JSON writes, 30 + 30 points stay under 3 KB, and a parsed history must fit MAX_HISTORY_BYTES
(4 KB) per source, or the summary is malformed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

HISTORY_WINDOW_SECONDS = 30 * 86400.0  # [fleet] history_window's default
RPO_SLICES = 30
MAX_DRILLS = 30
MAX_HISTORY_BYTES = 4096
DRILL_CODES = ("ok", "failed", "suspect")
_SLACK = 300.0  # seconds of clock skew a point may lie past publication


class MalformedHistory(ValueError):
    """A history that is not one drbackup writes (the summary is malformed)."""


@dataclass(frozen=True)
class SourceHistory:
    window_seconds: float
    rpo: list[list[float]] = field(default_factory=list)  # [slice end, worst RPO seconds]
    drills: list[list[object]] = field(default_factory=list)  # [at, code, RTO seconds | None]


def rpo_points(backup_times: list[float], now: float,
               window: float = HISTORY_WINDOW_SECONDS, slices: int = RPO_SLICES
               ) -> list[list[float]]:
    """Worst RPO per slice of the window before `now`, from the good backups' times (any order;
    those before the window count as the start of its first gap)."""
    times = sorted(t for t in backup_times if t <= now)
    width = window / slices
    points: list[list[float]] = []
    index = 0  # times[:index] are <= the current slice's end
    for k in range(slices):
        start, end = now - window + k * width, now - window + (k + 1) * width
        worst: float | None = None
        while index < len(times) and times[index] <= end:
            if index > 0 and times[index] > start:
                gap = times[index] - times[index - 1]
                worst = gap if worst is None else max(worst, gap)
            index += 1
        if index == 0:
            continue  # no good backup yet: no RPO to draw
        age = end - times[index - 1]
        worst = age if worst is None else max(worst, age)
        point: list[float] = [round(end), round(worst)]  # whole seconds: fewer bytes
        points.append(point)
    return points


def drill_points(drills: Sequence[tuple[float, str, float | None]]) -> list[list[object]]:
    """The newest MAX_DRILLS of (finished at, code, RTO estimate), oldest first."""
    newest = sorted(drills, key=lambda d: d[0])[-MAX_DRILLS:]
    return [[round(at), code, None if rto is None else round(float(rto), 1)]
            for at, code, rto in newest]


def _finite(value: object, what: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value \
            or not low <= value <= high:
        raise MalformedHistory(f"history {what} is not a figure in range")
    return float(value)


def _ordered(times: list[float], what: str) -> None:
    if any(b < a for a, b in pairwise(times)):
        raise MalformedHistory(f"history {what} are not in time order")


def parse_history(value: object, published_at: float) -> SourceHistory | None:
    """A source's history as read back; None when absent. Raises MalformedHistory."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"window_seconds", "rpo", "drills"}:
        raise MalformedHistory("history is not a history record")
    try:
        size = len(json.dumps(value, allow_nan=False).encode())
    except (TypeError, ValueError, RecursionError):
        raise MalformedHistory("history is not plain JSON") from None
    if size > MAX_HISTORY_BYTES:
        raise MalformedHistory(f"history of {size} bytes, more than {MAX_HISTORY_BYTES}")
    window = _finite(value["window_seconds"], "window", 86400.0, 366 * 86400.0)
    first, last = published_at - window - _SLACK, published_at + _SLACK
    rpo, drills = value["rpo"], value["drills"]
    if not isinstance(rpo, list) or len(rpo) > RPO_SLICES \
            or not isinstance(drills, list) or len(drills) > MAX_DRILLS:
        raise MalformedHistory("history holds too many points")
    points: list[list[float]] = []
    for point in rpo:
        if not isinstance(point, list) or len(point) != 2:
            raise MalformedHistory("an RPO point is not [time, seconds]")
        points.append([_finite(point[0], "RPO time", first, last),
                       _finite(point[1], "RPO", 0.0, 100 * 366 * 86400.0)])
    drilled: list[list[object]] = []
    for point in drills:
        if not isinstance(point, list) or len(point) != 3 or point[1] not in DRILL_CODES:
            raise MalformedHistory("a drill point is not [time, code, RTO]")
        rto = None if point[2] is None else _finite(point[2], "RTO", 0.0, 366 * 86400.0)
        drilled.append([_finite(point[0], "drill time", first, last), str(point[1]), rto])
    _ordered([p[0] for p in points], "RPO points")
    _ordered([float(p[0]) for p in drilled], "drills")  # type: ignore[arg-type]
    return SourceHistory(window, points, drilled)
