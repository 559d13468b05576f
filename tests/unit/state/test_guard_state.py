"""The guard's records (#16) in a real state database: verdicts, the agency's freeze opened by
its first suspect verdict in the same transaction, the history the churn baseline is taken
from, the last clean snapshot, false alarms and the allowances they teach."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drbackup.errors import StateError
from drbackup.state import StateDB
from drbackup.state import guard as records
from drbackup.state.guard import CLEAN, SUSPECT, NewVerdict


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateDB]:
    db = StateDB(tmp_path / "state.db")
    yield db
    db.close()


def _id(n: int, prefix: str = "") -> str:
    return (prefix + f"{n:08x}" * 8)[:64]


def _record(state: StateDB, n: int, verdict: str = CLEAN, *, source: str = "docs",
            agency: str = "a", churn: float | None = 0.01, prefix: str = "",
            at: float | None = None, **changes: Any) -> records.VerdictRecord:
    fields: dict[str, Any] = {
        "agency": agency, "source": source, "snapshot_id": _id(n, prefix), "run_id": n,
        "verdict": verdict, "churn": churn,
        "rules": ["content"] if verdict == SUSPECT else [],
        "reasons": [f"reason {n}"], "numbers": {"files": 100 + n},
        "rule_values": {"content": 40.0 + n} if verdict == SUSPECT else {}}
    fields.update(changes)
    return records.record_verdict(state, NewVerdict(**fields), at=at)


def _freeze_rows(state: StateDB) -> list[tuple[Any, ...]]:
    return state.read("SELECT agency, snapshot_id, released_at FROM guard_freezes ORDER BY id")


def test_a_verdict_round_trips_with_its_json_fields(state: StateDB) -> None:
    record = _record(state, 1, SUSPECT, at=1000.5, numbers={"files": 3, "names": ["x"]},
                     reasons=["one", "two"])
    assert record == records.VerdictRecord(
        id=record.id, agency="a", source="docs", snapshot_id=_id(1), run_id=1,
        assessed_at=1000.5, verdict=SUSPECT, churn=0.01, rules=["content"],
        reasons=["one", "two"], numbers={"files": 3, "names": ["x"]},
        rule_values={"content": 41.0}, false_alarm=False)
    assert record.suspect
    assert record.as_json()["numbers"] == {"files": 3, "names": ["x"]}
    assert _record(state, 2, run_id=None, churn=None).run_id is None


def test_the_first_suspect_opens_one_freeze_and_later_ones_join_it(state: StateDB) -> None:
    _record(state, 1)
    assert records.open_freeze(state, "a") is None
    first = _record(state, 2, SUSPECT, at=2000.0)
    _record(state, 3, SUSPECT, source="mail")
    _record(state, 4)
    _record(state, 5, SUSPECT)
    freeze = records.open_freeze(state, "a")
    assert freeze == records.FreezeRecord(id=freeze.id if freeze else 0, agency="a",
                                          source="docs", snapshot_id=first.snapshot_id,
                                          since=2000.0)
    assert _freeze_rows(state) == [("a", _id(2), None)]
    assert freeze is not None
    assert [v.snapshot_id for v in records.suspects_in_freeze(state, freeze)] == [
        _id(5), _id(3), _id(2)]
    # Another agency has its own freeze.
    _record(state, 6, SUSPECT, agency="b")
    assert _freeze_rows(state) == [("a", _id(2), None), ("b", _id(6), None)]


def test_a_suspect_verdict_and_its_freeze_are_written_together_or_not_at_all(
        state: StateDB) -> None:
    other = sqlite3.connect(state.path)
    other.execute("CREATE TRIGGER full BEFORE INSERT ON guard_freezes "
                  "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
    other.commit()
    with pytest.raises(StateError, match="disk is full"):
        _record(state, 1, SUSPECT)
    assert records.verdicts(state, "a") == []
    other.execute("DROP TRIGGER full")
    other.commit()
    other.close()
    _record(state, 1, SUSPECT)
    assert _freeze_rows(state) == [("a", _id(1), None)]


def test_a_snapshot_is_recorded_once(state: StateDB) -> None:
    first = _record(state, 1, CLEAN, reasons=["first"])
    again = _record(state, 1, CLEAN, reasons=["second"])
    assert again == first
    assert len(records.verdicts(state, "a")) == 1


def test_a_snapshot_recorded_again_as_suspect_opens_no_freeze(state: StateDB) -> None:
    # The stored verdict is clean: a freeze naming it would have no suspect in it.
    clean = _record(state, 1, CLEAN)
    assert _record(state, 1, SUSPECT) == clean
    assert records.open_freeze(state, "a") is None
    # A suspect one released: recording it again does not freeze the agency again.
    suspect = _record(state, 2, SUSPECT)
    freeze = records.open_freeze(state, "a")
    assert freeze is not None
    records.close_freeze(state, freeze, by="ops", reason="restored", false_alarm=False)
    assert _record(state, 2, SUSPECT) == suspect
    assert records.open_freeze(state, "a") is None
    assert len(_freeze_rows(state)) == 1


def test_verdict_for_takes_a_full_id_or_a_unique_prefix(state: StateDB) -> None:
    one = _record(state, 1, prefix="abcd1")
    two = _record(state, 2, prefix="abcd2")
    assert records.verdict_for(state, "a", one.snapshot_id) == one
    assert records.verdict_for(state, "a", "abcd1") == one
    assert records.verdict_for(state, "a", "abcd2") == two
    assert records.verdict_for(state, "a", "abcd") is None  # ambiguous
    assert records.verdict_for(state, "a", "abce") is None
    assert records.verdict_for(state, "b", "abcd1") is None  # another agency's
    assert records.verdict_for(state, "a", one.snapshot_id + "0") is None


def test_history_is_the_recent_clean_churn_oldest_first_and_the_count(state: StateDB) -> None:
    churns = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06]
    for n, churn in enumerate(churns):
        _record(state, n, churn=churn)
    _record(state, 10, SUSPECT, churn=0.9)  # not clean: not in the baseline
    _record(state, 11, churn=None)  # no parent: no churn
    _record(state, 12, churn=0.5, source="mail")
    assert records.history(state, "a", "docs", 30) == (churns, 8)
    assert records.history(state, "a", "docs", 3) == ([0.04, 0.05, 0.06], 8)
    assert records.history(state, "a", "mail", 30) == ([0.5], 1)
    assert records.history(state, "a", "none", 30) == ([], 0)


def test_last_clean_is_the_clean_one_before_the_first_suspect_of_the_freeze(
        state: StateDB) -> None:
    assert records.last_clean(state, "a", "docs") is None
    _record(state, 1)
    good = _record(state, 2)
    mail = _record(state, 3, source="mail")
    _record(state, 4, SUSPECT)
    _record(state, 5)  # clean, but after the attack began: not trusted
    _record(state, 6, SUSPECT)
    mail_later = _record(state, 7, source="mail")
    last = records.last_clean(state, "a", "docs")
    assert last is not None and last.snapshot_id == good.snapshot_id
    # A source with no suspect snapshot in the freeze: its newest clean one.
    last_mail = records.last_clean(state, "a", "mail")
    assert last_mail is not None and last_mail.snapshot_id == mail_later.snapshot_id
    assert mail.id < mail_later.id
    # Once the freeze is released, the newest clean one again.
    freeze = records.open_freeze(state, "a")
    assert freeze is not None
    records.close_freeze(state, freeze, by="ops", reason="handled", false_alarm=False)
    last = records.last_clean(state, "a", "docs")
    assert last is not None and last.snapshot_id == _id(5)


def test_a_false_alarm_counts_as_clean_and_stores_allowances(state: StateDB) -> None:
    _record(state, 1, churn=0.02)
    suspect = _record(state, 2, SUSPECT, churn=0.4)
    records.mark_false_alarm(state, suspect, {"content": 52.5, "churn": 0.5})
    marked = records.verdict_for(state, "a", suspect.snapshot_id)
    assert marked is not None and marked.false_alarm and not marked.suspect
    assert marked.verdict == SUSPECT  # what was judged stays
    assert records.allowances(state, "a", "docs") == {"content": 52.5, "churn": 0.5}
    assert records.allowances(state, "a", "mail") == {}
    assert records.history(state, "a", "docs", 30) == ([0.02, 0.4], 2)
    last = records.last_clean(state, "a", "docs")
    assert last is not None and last.snapshot_id == suspect.snapshot_id
    freeze = records.open_freeze(state, "a")
    assert freeze is not None and records.suspects_in_freeze(state, freeze) == []
    # A later false alarm of the same source raises an allowance in place.
    other = _record(state, 3, SUSPECT)
    records.mark_false_alarm(state, other, {"content": 80.0})
    assert records.allowances(state, "a", "docs") == {"content": 80.0, "churn": 0.5}


def test_close_freeze_closes_it_once_and_the_next_suspect_opens_a_new_one(
        state: StateDB) -> None:
    _record(state, 1, SUSPECT, at=100.0)
    freeze = records.open_freeze(state, "a")
    assert freeze is not None
    records.close_freeze(state, freeze, by="alice", reason="restored from 00000000",
                         false_alarm=False, at=200.0)
    records.close_freeze(state, freeze, by="mallory", reason="again", false_alarm=True,
                         at=300.0)  # already closed: nothing changes
    assert records.open_freeze(state, "a") is None
    [closed] = records.freezes(state, "a")
    assert (closed.released_at, closed.released_by, closed.release_reason,
            closed.false_alarm) == (200.0, "alice", "restored from 00000000", False)
    _record(state, 2, SUSPECT, at=400.0)
    newer = records.open_freeze(state, "a")
    assert newer is not None and newer.snapshot_id == _id(2) and newer.since == 400.0
    assert [f.snapshot_id for f in records.freezes(state, "a")] == [_id(2), _id(1)]
    assert [v.snapshot_id for v in records.suspects_in_freeze(state, newer)] == [_id(2)]


def _bulk_clean(state: StateDB, start: int, count: int, source: str = "docs") -> None:
    state.write([(
        "INSERT INTO guard_verdicts (agency, source, snapshot_id, run_id, assessed_at, "
        "verdict, churn, rules, reasons, numbers, rule_values) VALUES "
        "('a', ?, ?, NULL, 0, 'clean', 0.01, '[]', '[]', '{}', '{}')",
        (source, _id(n)),
    ) for n in range(start, start + count)])


def test_a_long_freeze_keeps_its_first_suspect_and_the_last_clean_snapshot(
        state: StateDB) -> None:
    good = _record(state, 1)
    first = _record(state, 2, SUSPECT)
    # Weeks of hourly backups while nobody releases the freeze.
    _bulk_clean(state, 100, 1500)
    _bulk_clean(state, 5000, 200, source="mail")
    later = _record(state, 3, SUSPECT)
    freeze = records.open_freeze(state, "a")
    assert freeze is not None and freeze.snapshot_id == first.snapshot_id
    assert [v.id for v in records.suspects_in_freeze(state, freeze)] == [later.id, first.id]
    last = records.last_clean(state, "a", "docs")
    assert last is not None and last.snapshot_id == good.snapshot_id
    # Releasing the later one as a false alarm leaves the first: still frozen.
    records.mark_false_alarm(state, later, {})
    assert [v.id for v in records.suspects_in_freeze(state, freeze)] == [first.id]
