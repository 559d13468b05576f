"""The GB/T 20988 table as data, and which level measured figures meet."""

from __future__ import annotations

from datetime import timedelta

from drbackup.verify.levels import GBT_20988_LEVELS, Measured, highest_level_met, level_met

HOUR = timedelta(hours=1)


def _measured(**changes: object) -> Measured:
    values: dict[str, object] = {"rpo": HOUR, "rto_estimate": 2 * HOUR, "backups_last_7d": 200,
                                 "backups_last_24h": 24, "last_good_drill_age": HOUR}
    values.update(changes)
    return Measured(**values)  # type: ignore[arg-type]


def test_table_has_six_levels_with_confidence() -> None:
    assert [lv.level for lv in GBT_20988_LEVELS] == [1, 2, 3, 4, 5, 6]
    assert {lv.confidence for lv in GBT_20988_LEVELS[:2]} == {"verified"}
    assert {lv.confidence for lv in GBT_20988_LEVELS[2:]} == {"unconfirmed"}


def test_hourly_backups_and_fast_restores_meet_level_4_but_never_5() -> None:
    level, blockers = highest_level_met(_measured())
    assert level is not None and level.level == 4
    assert any("real-time replication" in b for b in blockers)


def test_slow_restore_caps_the_level() -> None:
    level, blockers = highest_level_met(_measured(rto_estimate=30 * HOUR))
    assert level is not None and level.level == 2
    assert blockers == ["level 3: RTO estimate 30.0h > 24.0h"]


def test_no_drill_means_no_level() -> None:
    level, blockers = highest_level_met(_measured(rto_estimate=None, last_good_drill_age=None))
    assert level is None
    assert "level 1: no passed restore drill" in blockers


def test_weekly_backup_with_drill_meets_level_1_only() -> None:
    figures = _measured(rpo=timedelta(days=3), rto_estimate=timedelta(days=3),
                        backups_last_7d=1, backups_last_24h=0)
    assert level_met(GBT_20988_LEVELS[0], figures) == (True, [])
    ok, reasons = level_met(GBT_20988_LEVELS[1], figures)
    assert not ok and len(reasons) == 3


def test_stale_drill_fails_every_level() -> None:
    level, _ = highest_level_met(_measured(last_good_drill_age=timedelta(days=40)))
    assert level is None
