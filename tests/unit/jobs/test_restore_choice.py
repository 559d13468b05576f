"""--at parsing and snapshot choice by time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from drbackup.engine import Snapshot
from drbackup.errors import DrBackupError, ExitCode, NotFoundError, TargetRefusedError
from drbackup.jobs.restore import check_in_place, check_patterns, parse_at, pick_snapshot


def _snap(ident: str, when: datetime) -> Snapshot:
    return Snapshot(id=ident * 8, time=when, hostname="h", paths=["/srv/data"], tags=[])


def test_parse_at_forms() -> None:
    local = parse_at("2026-11-20 14:00")
    assert local.tzinfo is not None
    assert (local.year, local.month, local.day, local.hour, local.minute) == (2026, 11, 20, 14, 0)
    assert parse_at("2026-11-20 14:00 UTC") == datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
    assert parse_at("2026-11-20 22:00 Asia/Shanghai") == datetime(2026, 11, 20, 14, 0,
                                                                  tzinfo=UTC)
    assert parse_at("2026-11-20T14:00:30+08:00") == datetime(
        2026, 11, 20, 14, 0, 30, tzinfo=timezone(timedelta(hours=8)))
    assert parse_at("2026-11-20T06:00Z") == datetime(2026, 11, 20, 6, tzinfo=UTC)
    assert parse_at("2026-11-20 14:00 Europe/Berlin").tzinfo == ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize("bad", ["", "noon", "2026-13-01 10:00", "2026-11-20 14:00 Mars/Base",
                                 "2026-11-20T14:00+01:00 UTC"])
def test_parse_at_rejects(bad: str) -> None:
    with pytest.raises(DrBackupError) as info:
        parse_at(bad)
    assert info.value.exit_code == ExitCode.USAGE


def test_pick_by_time() -> None:
    base = datetime(2026, 11, 20, 10, tzinfo=UTC)
    snaps = [_snap("c", base + timedelta(hours=6)), _snap("a", base),
             _snap("b", base + timedelta(hours=3))]
    assert pick_snapshot(snaps, at=base + timedelta(hours=4)).id.startswith("b")
    assert pick_snapshot(snaps, at=base + timedelta(hours=3)).id.startswith("b")
    assert pick_snapshot(snaps, at=base + timedelta(days=9)).id.startswith("c")
    assert pick_snapshot(snaps).id.startswith("c")
    assert pick_snapshot(snaps, "aaaa").id.startswith("a")
    with pytest.raises(NotFoundError, match="at or before"):
        pick_snapshot(snaps, at=base - timedelta(seconds=1))


def test_in_place_and_pattern_guards() -> None:
    snap = _snap("a", datetime(2026, 11, 20, tzinfo=UTC))
    check_in_place(snap, ("/srv/data", "/srv/data/sub/file.txt"))
    for outside in ("/srv", "/srv/database", "/etc/passwd", "relative/path"):
        with pytest.raises(TargetRefusedError):
            check_in_place(snap, (outside,))
    check_patterns(("*.tmp", "/srv/data/a..b"), "exclude")
    with pytest.raises(TargetRefusedError):
        check_patterns(("/srv/data/../../etc",), "include")


def test_parse_at_relative_forms() -> None:
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    assert parse_at("2h ago", now=now) == datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    assert parse_at("1d12h", now=now) == datetime(2026, 12, 6, 0, 0, tzinfo=UTC)
    assert parse_at("90m  AGO", now=now) == datetime(2026, 12, 7, 10, 30, tzinfo=UTC)
    with pytest.raises(DrBackupError):
        parse_at("2 fortnights ago", now=now)
