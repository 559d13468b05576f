"""The retention guards, on restic's plan as data: future-dated snapshots stop the run, a plan
that would empty a group or the agency is refused, unlisted snapshots are kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from drbackup.engine import ForgetGroup, Snapshot
from drbackup.jobs.retention import RetentionRefused, checked_plan

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def snap(sid: str, days_ago: float, source: str = "documents") -> Snapshot:
    return Snapshot(id=sid * 8, time=NOW - timedelta(days=days_ago), hostname="h",
                    paths=["/srv"], tags=["agency=a", f"source={source}"], tree="t" + sid)


def group(keep: list[Snapshot], remove: list[Snapshot]) -> ForgetGroup:
    return ForgetGroup(tags=keep[0].tags if keep else remove[0].tags, host="h", paths=["/srv"],
                       keep=keep, remove=remove,
                       reasons={s.id: ["within 10d"] for s in keep})


def test_plan_keeps_and_removes_as_restic_said_oldest_first() -> None:
    a, b, c = snap("a", 100), snap("b", 50), snap("c", 1)
    keep, remove = checked_plan("a", [a, b, c], [group([c, a], [b])], NOW)
    assert [s.id for s in keep] == [a.id, c.id]
    assert [s.id for s in remove] == [b.id]
    assert keep[1].reasons == ["within 10d"]


def test_snapshot_dated_in_the_future_refuses_the_run() -> None:
    junk = snap("j", -30)
    with pytest.raises(RetentionRefused, match="dated in the future"):
        checked_plan("a", [snap("a", 5), junk], [group([junk], [snap("a", 5)])], NOW)


def test_small_clock_skew_is_tolerated() -> None:
    ahead = snap("s", -0.01)  # 15 minutes ahead
    keep, remove = checked_plan("a", [ahead], [group([ahead], [])], NOW)
    assert [s.id for s in keep] == [ahead.id] and remove == []


def test_plan_that_empties_a_group_is_refused() -> None:
    docs, db = snap("d", 3), snap("e", 3, source="db")
    with pytest.raises(RetentionRefused, match="every snapshot of group"):
        checked_plan("a", [docs, db], [group([docs], []), group([], [db])], NOW)


def test_plan_that_leaves_no_snapshot_is_refused() -> None:
    only = snap("o", 3)
    with pytest.raises(RetentionRefused):
        checked_plan("a", [only], [], NOW)


def test_snapshots_outside_every_group_are_kept() -> None:
    kept, stray = snap("k", 2), snap("s", 2, source="other")
    keep, remove = checked_plan("a", [kept, stray], [group([kept], [])], NOW)
    assert {s.id for s in keep} == {kept.id, stray.id} and remove == []
