"""The ransomware guard's metrics, from verdicts and freezes recorded in a real (temporary) state
database through drbackup.state.guard: suspect and frozen flags through a freeze and its
release, the last clean snapshot, agreement with state.guard's own functions, and the cost of a
scrape (two indexed statements, whatever the history)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from drbackup.config.models import Config
from drbackup.metrics.collector import StateCollector
from drbackup.metrics.guard import read_guard
from drbackup.state import StateDB
from drbackup.state import guard as records
from drbackup.state.guard import _FREEZES, _SOURCES, CLEAN, SUSPECT, NewVerdict

NOW = 1_800_000_000.0
SUSPECT_METRIC = "drbackup_guard_suspect"
FROZEN = "drbackup_guard_frozen"
LAST_CLEAN = "drbackup_guard_last_clean_timestamp_seconds"
LAST_VERDICT = "drbackup_guard_last_verdict_timestamp_seconds"
GUARD_FAMILIES = (SUSPECT_METRIC, FROZEN, LAST_CLEAN, LAST_VERDICT)


def make_config(tmp_path: Path, agencies: int = 0, sources: int = 2) -> Config:
    """planning (guard on): directories docs and mail, and a SQLite dump the guard skips;
    archive: guard off; plus `agencies` more guarded agencies of `sources` directories."""
    password = tmp_path / "pw"
    password.write_text("x\n")
    return Config.model_validate({
        "daemon": {"state_dir": str(tmp_path / "state"), "cache_dir": str(tmp_path / "cache")},
        "agencies": [
            {"id": "planning", "password_file": str(password), "sources": [
                {"id": "docs", "kind": "directory", "paths": ["/srv/docs"]},
                {"id": "mail", "kind": "directory", "paths": ["/srv/mail"]},
                {"id": "permits", "kind": "sqlite", "path": "/srv/permits.sqlite"}]},
            {"id": "archive", "password_file": str(password), "guard": {"enabled": False},
             "sources": [{"id": "docs", "kind": "directory", "paths": ["/srv/archive"]}]},
            *({"id": f"agency-{a:03d}", "password_file": str(password), "sources": [
                {"id": f"source-{s}", "kind": "directory", "paths": ["/srv/x"]}
                for s in range(sources)]} for a in range(agencies)),
        ],
    })


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateDB]:
    db = StateDB(tmp_path / "state" / "state.db")
    yield db
    db.close()


class Guard:
    """Records verdicts the way the backup job does, one snapshot id per verdict."""

    def __init__(self, state: StateDB):
        self.state = state
        self.count = 0

    def verdict(self, verdict: str, at: float, source: str = "docs",
                agency: str = "planning") -> records.VerdictRecord:
        self.count += 1
        return records.record_verdict(self.state, NewVerdict(
            agency=agency, source=source, snapshot_id=f"{self.count:08x}{'0' * 56}",
            run_id=None, verdict=verdict, churn=0.01,
            rules=["encrypted"] if verdict == SUSPECT else [],
            reasons=["12 files look encrypted"] if verdict == SUSPECT else [],
            numbers={}), at=at)

    def release(self, agency: str = "planning", *, false_alarm: bool, at: float) -> None:
        freeze = records.open_freeze(self.state, agency)
        assert freeze is not None
        if false_alarm:
            for suspect in records.suspects_in_freeze(self.state, freeze):
                records.mark_false_alarm(self.state, suspect, {})
        records.close_freeze(self.state, freeze, by="alice", reason="checked", at=at,
                             false_alarm=false_alarm)


def scrape(collector: StateCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The guard families of one text scrape (the cached path the endpoint serves)."""
    out = {}
    for family in text_string_to_metric_families(collector.render()):
        if family.name in GUARD_FAMILIES:
            for sample in family.samples:
                out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def get(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
        agency: str = "planning", source: str | None = "docs") -> float | None:
    labels = {"agency": agency} if source is None else {"agency": agency, "source": source}
    return found.get((name, tuple(sorted(labels.items()))))


def test_no_verdict_yet_is_not_suspect_and_has_no_timestamps(tmp_path: Path,
                                                             state: StateDB) -> None:
    found = scrape(StateCollector(make_config(tmp_path), state, clock=lambda: NOW))
    assert get(found, SUSPECT_METRIC) == 0
    assert get(found, SUSPECT_METRIC, source="mail") == 0
    assert get(found, FROZEN, source=None) == 0
    assert get(found, LAST_CLEAN) is None
    assert get(found, LAST_VERDICT) is None
    # Only directory sources of agencies with the guard on.
    assert {dict(labels)["agency"] for _, labels in found} == {"planning"}
    assert {dict(labels).get("source") for _, labels in found} == {"docs", "mail", None}


def test_clean_verdicts(tmp_path: Path, state: StateDB) -> None:
    guard = Guard(state)
    guard.verdict(CLEAN, NOW - 200)
    guard.verdict(CLEAN, NOW - 100)
    found = scrape(StateCollector(make_config(tmp_path), state, clock=lambda: NOW))
    assert get(found, SUSPECT_METRIC) == 0
    assert get(found, FROZEN, source=None) == 0
    assert get(found, LAST_CLEAN) == NOW - 100
    assert get(found, LAST_VERDICT) == NOW - 100
    assert get(found, LAST_VERDICT, source="mail") is None


def test_suspect_freezes_and_keeps_the_clean_snapshot_before_it(tmp_path: Path,
                                                                state: StateDB) -> None:
    guard = Guard(state)
    collector = StateCollector(make_config(tmp_path), state, clock=lambda: NOW)
    guard.verdict(CLEAN, NOW - 500)
    guard.verdict(CLEAN, NOW - 400)
    guard.verdict(CLEAN, NOW - 390, source="mail")
    assert get(scrape(collector), SUSPECT_METRIC) == 0
    guard.verdict(SUSPECT, NOW - 300)
    found = scrape(collector)
    assert get(found, SUSPECT_METRIC) == 1
    assert get(found, FROZEN, source=None) == 1
    assert get(found, LAST_CLEAN) == NOW - 400  # the clean one before the first suspect one
    assert get(found, LAST_VERDICT) == NOW - 300
    assert get(found, SUSPECT_METRIC, source="mail") == 0  # frozen, but mail looks fine
    # While frozen, later clean verdicts neither clear the source nor move its last clean
    # snapshot past the suspect one; a second suspect one does not move it either.
    guard.verdict(CLEAN, NOW - 200)
    guard.verdict(SUSPECT, NOW - 150)
    guard.verdict(CLEAN, NOW - 100)
    guard.verdict(CLEAN, NOW - 90, source="mail")
    found = scrape(collector)
    assert get(found, SUSPECT_METRIC) == 1
    assert get(found, FROZEN, source=None) == 1
    assert get(found, LAST_CLEAN) == NOW - 400
    assert get(found, LAST_VERDICT) == NOW - 100
    assert get(found, LAST_CLEAN, source="mail") == NOW - 90
    reference = records.last_clean(state, "planning", "docs")
    assert reference is not None
    assert reference.assessed_at == NOW - 400


def test_a_released_false_alarm_clears_both(tmp_path: Path, state: StateDB) -> None:
    guard = Guard(state)
    collector = StateCollector(make_config(tmp_path), state, clock=lambda: NOW)
    guard.verdict(CLEAN, NOW - 400)
    guard.verdict(SUSPECT, NOW - 300)
    assert get(scrape(collector), SUSPECT_METRIC) == 1
    guard.release(false_alarm=True, at=NOW - 10)  # updates in place: no new row anywhere
    found = scrape(collector)
    assert get(found, SUSPECT_METRIC) == 0
    assert get(found, FROZEN, source=None) == 0
    assert get(found, LAST_CLEAN) == NOW - 300  # a false alarm counts as clean
    assert get(found, LAST_VERDICT) == NOW - 300


def test_a_release_that_was_no_false_alarm(tmp_path: Path, state: StateDB) -> None:
    """Released after the incident was dealt with: the suspect verdict stays suspect, so the
    source stays suspect until a clean verdict follows, and its last clean one stays older."""
    guard = Guard(state)
    collector = StateCollector(make_config(tmp_path), state, clock=lambda: NOW)
    guard.verdict(CLEAN, NOW - 400)
    guard.verdict(SUSPECT, NOW - 300)
    guard.release(false_alarm=False, at=NOW - 200)
    found = scrape(collector)
    assert get(found, FROZEN, source=None) == 0
    assert get(found, SUSPECT_METRIC) == 1  # the newest verdict is still suspect
    assert get(found, LAST_CLEAN) == NOW - 400
    guard.verdict(CLEAN, NOW - 100)
    found = scrape(collector)
    assert get(found, SUSPECT_METRIC) == 0
    assert get(found, LAST_CLEAN) == NOW - 100


def test_a_freeze_opened_by_another_source_marks_only_suspect_sources(tmp_path: Path,
                                                                     state: StateDB) -> None:
    guard = Guard(state)
    guard.verdict(SUSPECT, NOW - 300, source="mail")
    guard.verdict(CLEAN, NOW - 200, source="mail")
    guard.verdict(CLEAN, NOW - 250)
    guard.verdict(SUSPECT, NOW - 100)
    found = scrape(StateCollector(make_config(tmp_path), state, clock=lambda: NOW))
    assert get(found, SUSPECT_METRIC, source="mail") == 1  # suspect since the freeze began
    assert get(found, LAST_CLEAN, source="mail") is None  # nothing clean before it
    assert get(found, SUSPECT_METRIC) == 1
    assert get(found, LAST_CLEAN) == NOW - 250


@pytest.mark.parametrize("seed", range(12))
def test_figures_match_state_guard_on_random_histories(tmp_path: Path, state: StateDB,
                                                      seed: int) -> None:
    """The SQL mirrors drbackup/state/guard.py: open_freeze(), suspects_in_freeze(),
    last_clean() and the newest of verdicts(), after any mix of verdicts and releases."""
    rng = random.Random(seed)
    config = make_config(tmp_path, agencies=2, sources=2)
    guard = Guard(state)
    pairs = [(a.id, s.id) for a in config.agencies if a.guard.enabled for s in a.sources
             if s.kind == "directory"]
    at = NOW - 10_000
    for _ in range(rng.randint(5, 60)):
        at += 10
        agency, source = rng.choice(pairs)
        if rng.random() < 0.15 and records.open_freeze(state, agency) is not None:
            guard.release(agency, false_alarm=rng.random() < 0.5, at=at)
        else:
            guard.verdict(SUSPECT if rng.random() < 0.2 else CLEAN, at, source, agency)
    view = read_guard(state, config)
    frozen = dict(view.frozen)
    for agency, source in pairs:
        freeze = records.open_freeze(state, agency)
        assert frozen[agency] == (freeze is not None)
        newest = records.verdicts(state, agency, source, limit=1)
        in_freeze = [] if freeze is None else [
            v for v in records.suspects_in_freeze(state, freeze) if v.source == source]
        clean = records.last_clean(state, agency, source)
        item = next(i for i in view.sources if (i.agency, i.source) == (agency, source))
        assert item.suspect == (bool(newest and newest[0].suspect) or bool(in_freeze))
        assert item.last_verdict == (newest[0].assessed_at if newest else None)
        assert item.last_clean == (clean.assessed_at if clean else None)


def test_a_scrape_is_two_indexed_statements(tmp_path: Path, state: StateDB,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """However many agencies, sources and verdicts: two statements, each seeking an index
    (a SCAN of a guard table would grow with the history)."""
    config = make_config(tmp_path, agencies=50, sources=3)
    guard = Guard(state)
    for index in range(20):
        for agency in config.agencies[2:]:
            for source in agency.sources:
                guard.verdict(SUSPECT if index == 15 and source.id == "source-1" else CLEAN,
                              NOW - 1000 + index, source.id, agency.id)
    statements: list[str] = []
    read = state.read

    def counted(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        statements.append(sql)
        return read(sql, params)

    monkeypatch.setattr(state, "read", counted)
    view = read_guard(state, config)
    assert len(statements) == 2
    assert sum(frozen for _, frozen in view.frozen) == 50
    assert sum(item.suspect for item in view.sources) == 50
    for sql in (_FREEZES, _SOURCES):
        plan = [str(row[3]) for row in read("EXPLAIN QUERY PLAN " + sql, ("[]",))]
        scans = [step for step in plan if step.startswith("SCAN") and "VIRTUAL TABLE" not in step]
        assert scans == [], plan
        assert any("guard_verdicts_by_" in step for step in plan), plan


def test_no_guarded_agency_reads_nothing(tmp_path: Path, state: StateDB,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    config = make_config(tmp_path)
    data = config.model_dump(mode="json")
    data["agencies"] = [data["agencies"][1]]  # archive only: guard off
    monkeypatch.setattr(state, "read", lambda *args: pytest.fail("read the guard tables"))
    assert read_guard(state, Config.model_validate(data)).sources == ()
