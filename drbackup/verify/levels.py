"""GB/T 20988 disaster-recovery levels as data, and which level measured figures meet.

The table follows /work/shared/notes/dr-standards-and-ops.md §1.1 (GB/T 20988-2007 Annex A; the
2025 edition replaces it from 2026-01-01 and must be checked against its own text). Each row
carries the confidence of its figures: "verified" when read in a cited source, "unconfirmed"
otherwise. Operators should treat an "unconfirmed" level as indicative.

How a level's published ranges become pass/fail rules (our reading, stated so it can be argued
with):
- RPO: the measured RPO must not exceed the upper end of the level's RPO range.
- RTO: the estimated full-restore time must not exceed the level's upper bound. Where the
  standard gives only a lower bound ("≥ 2 days"), the level has no RTO bound; where it gives
  "≥ X" for a higher level, the bound is the floor of the level below (a higher level has to
  beat what the lower one allows).
- Backup frequency: good backups in the last 7 days / 24 hours (each restic snapshot is a full
  logical backup, so it counts as a full backup).
- Every level requires "periodic validity verification of backup data": a passed restore drill
  no older than `drill_max_age`.
- Levels 5 and 6 need real-time replication or zero-loss clusters, which snapshots cannot
  provide; drbackup never claims them (`measurable = False`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from drbackup.config.units import short_duration

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class DrLevel:
    level: int
    name: str
    name_zh: str
    rpo_max: timedelta | None  # None: no bound
    rto_max: timedelta | None
    min_backups_per_week: int
    min_backups_per_day: int
    drill_max_age: timedelta
    measurable: bool  # can drbackup's measurements alone show this level?
    confidence: str  # "verified" | "unconfirmed"
    requirement: str  # the data-backup requirement in words


GBT_20988_LEVELS: tuple[DrLevel, ...] = (
    DrLevel(1, "Basic support", "基本支持", rpo_max=7 * DAY, rto_max=None,
            min_backups_per_week=1, min_backups_per_day=0, drill_max_age=31 * DAY,
            measurable=True, confidence="verified",
            requirement="full backup at least weekly; media off-site; periodic validity "
                        "verification of backup data"),
    DrLevel(2, "Backup-site support", "备用场地支持", rpo_max=7 * DAY, rto_max=2 * DAY,
            min_backups_per_week=7, min_backups_per_day=1, drill_max_age=31 * DAY,
            measurable=True, confidence="verified",
            requirement="full backup daily; off-site media; batch transfer several times a day"),
    DrLevel(3, "Electronic transmission and partial equipment", "电子传输和部分设备支持",
            rpo_max=DAY, rto_max=DAY, min_backups_per_week=7, min_backups_per_day=2,
            drill_max_age=31 * DAY, measurable=True, confidence="unconfirmed",
            requirement="daily full backup plus electronic transfer of critical data to the "
                        "backup site several times a day"),
    DrLevel(4, "Electronic transmission and complete equipment", "电子传输及完整设备支持",
            rpo_max=DAY, rto_max=12 * HOUR, min_backups_per_week=7, min_backups_per_day=2,
            drill_max_age=31 * DAY, measurable=True, confidence="unconfirmed",
            requirement="as level 3, with all disaster-recovery equipment ready"),
    DrLevel(5, "Real-time transmission and complete equipment", "实时数据传输及完整设备支持",
            rpo_max=timedelta(minutes=30), rto_max=2 * DAY, min_backups_per_week=7,
            min_backups_per_day=48, drill_max_age=31 * DAY, measurable=False,
            confidence="unconfirmed",
            requirement="real-time remote replication of critical data; automatic network "
                        "switch-over; 7x24 staff"),
    DrLevel(6, "Zero data loss and remote cluster", "数据零丢失和远程集群支持",
            rpo_max=timedelta(0), rto_max=HOUR, min_backups_per_week=7,
            min_backups_per_day=48, drill_max_age=31 * DAY, measurable=False,
            confidence="unconfirmed",
            requirement="real-time zero-loss replication; remote cluster"),
)


@dataclass(frozen=True)
class Measured:
    """What drbackup measured for one source (None: not measured)."""

    rpo: timedelta | None
    rto_estimate: timedelta | None
    backups_last_7d: int
    backups_last_24h: int
    last_good_drill_age: timedelta | None


def level_met(level: DrLevel, measured: Measured) -> tuple[bool, list[str]]:
    """Whether the measured figures meet one level, and the reasons when they do not."""
    reasons: list[str] = []
    if not level.measurable:
        reasons.append("needs real-time replication, which snapshots cannot show")
    if measured.rpo is None:
        reasons.append("no good backup")
    elif level.rpo_max is not None and measured.rpo > level.rpo_max:
        reasons.append(f"RPO {_h(measured.rpo)} > {_h(level.rpo_max)}")
    if measured.rto_estimate is None:
        reasons.append("no measured restore time (no good drill)")
    elif level.rto_max is not None and measured.rto_estimate > level.rto_max:
        reasons.append(f"RTO estimate {_h(measured.rto_estimate)} > {_h(level.rto_max)}")
    if measured.backups_last_7d < level.min_backups_per_week:
        reasons.append(f"{measured.backups_last_7d} good backups in 7 days "
                       f"< {level.min_backups_per_week}")
    if measured.backups_last_24h < level.min_backups_per_day:
        reasons.append(f"{measured.backups_last_24h} good backups in 24 hours "
                       f"< {level.min_backups_per_day}")
    if measured.last_good_drill_age is None:
        reasons.append("no passed restore drill")
    elif measured.last_good_drill_age > level.drill_max_age:
        reasons.append(f"last passed drill {_h(measured.last_good_drill_age)} ago "
                       f"> {_h(level.drill_max_age)}")
    return not reasons, reasons


def highest_level_met(measured: Measured) -> tuple[DrLevel | None, list[str]]:
    """The highest level whose rules (and all lower levels' rules) the figures meet, plus why
    the next level up is not met."""
    best: DrLevel | None = None
    for level in GBT_20988_LEVELS:
        ok, reasons = level_met(level, measured)
        if not ok:
            return best, [f"level {level.level}: {r}" for r in reasons]
        best = level
    return best, []


def _h(value: timedelta) -> str:
    return short_duration(value.total_seconds())
