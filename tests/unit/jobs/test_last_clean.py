"""restore --last-clean's choice (#16), on a real state database and snapshots as data: the
newest clean snapshot before the first suspect one since the freeze began, found in the store
(a replica's copy by its `original`), ids read back from a store validated before any lookup,
the cause named when a source has no verdict, and --all-sources' rule for sources without
verdicts (newest before the freeze, else the latest)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drbackup.config.models import AgencyConfig, Config, DaemonConfig
from drbackup.engine import Snapshot
from drbackup.errors import ExitCode, NotFoundError, TargetRefusedError
from drbackup.jobs.restore import (
    BEFORE_FREEZE,
    LAST_CLEAN,
    LATEST,
    choose_clean,
    clean_candidates,
    guard_verdict,
    judged_id,
    no_verdict_error,
    require_clean_candidates,
)
from drbackup.jobs.restore_all import choose_unjudged, guard_choice
from drbackup.jobs.runtime import Runtime
from drbackup.state import guard as records

T0 = datetime(2026, 12, 6, 1, 0, tzinfo=UTC)
A, B, C, D = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)


def _runtime(tmp_path: Path, **agency: object) -> Runtime:
    config = Config(daemon=DaemonConfig(state_dir=tmp_path / "state"), agencies=[
        AgencyConfig.model_validate({
            "id": "planning", "password_file": str(tmp_path / "pw"), **agency,
            "sources": [{"id": "docs", "kind": "directory", "paths": ["/srv/docs"]},
                        {"id": "db", "kind": "sqlite", "path": "/srv/db.sqlite"}]})])
    return Runtime.create(config)


def _snap(ident: str, hours: float, *, original: str | None = None, source: str = "docs"
          ) -> Snapshot:
    return Snapshot(id=ident, time=T0 + timedelta(hours=hours), hostname="h",
                    paths=["/srv/docs"], tags=["agency=planning", f"source={source}"],
                    original=original)


def _verdict(rt: Runtime, snapshot_id: str, verdict: str, hours: float,
             source: str = "docs") -> records.VerdictRecord:
    return records.record_verdict(rt.state, records.NewVerdict(
        "planning", source, snapshot_id, None, verdict, 0.1, [],
        [f"{verdict} because of {snapshot_id[:4]}"], {}), at=(T0 + timedelta(hours=hours,
                                                                       minutes=5)).timestamp())


def _attacked(rt: Runtime) -> list[Snapshot]:
    """A and B clean, C suspect (the freeze opens), D after it clean-looking."""
    for ident, verdict, hours in ((A, "clean", 0), (B, "clean", 1), (C, "suspect", 2),
                                  (D, "clean", 3)):
        _verdict(rt, ident, verdict, hours)
    return [_snap(A, 0), _snap(B, 1), _snap(C, 2), _snap(D, 3)]


def test_the_newest_clean_snapshot_before_the_first_suspect_one(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    snapshots = _attacked(rt)
    agency = rt.config.agency("planning")
    candidates = clean_candidates(rt, agency, "docs")
    assert candidates is not None
    assert [v.snapshot_id for v in candidates.clean] == [B, A]  # D is after the suspect one
    choice = choose_clean(candidates, snapshots, "local")
    assert choice.snapshot.id == B and choice.rule == LAST_CLEAN
    when = f"{choice.snapshot.time.astimezone():%Y-%m-%d %H:%M}"
    assert choice.why == f"last clean snapshot bbbbbbbb of {when}, before suspect cccccccc"

    gone = choose_clean(candidates, [s for s in snapshots if s.id != B], "local")
    assert gone.snapshot.id == A
    assert gone.why.endswith("before suspect cccccccc; newer clean bbbbbbbb not in store 'local'")
    with pytest.raises(NotFoundError, match="none of the 2 clean snapshot"):
        choose_clean(candidates, [_snap(C, 2), _snap(D, 3)], "local")


def test_a_false_alarm_counts_as_clean(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    snapshots = _attacked(rt)
    suspect = records.verdict_for(rt.state, "planning", C)
    assert suspect is not None
    records.mark_false_alarm(rt.state, suspect, {})
    candidates = clean_candidates(rt, rt.config.agency("planning"), "docs")
    assert candidates is not None
    choice = choose_clean(candidates, snapshots, "local")
    assert choice.snapshot.id == D and choice.why.endswith(", the newest assessed")
    unassessed = choose_clean(candidates, [*snapshots, _snap("e" * 64, 4)], "local")
    assert unassessed.why.endswith("the newest assessed (1 newer snapshot(s) never assessed)")


def test_a_replica_copy_is_found_by_its_original_and_two_claims_are_refused(
        tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    _attacked(rt)
    candidates = clean_candidates(rt, rt.config.agency("planning"), "docs")
    assert candidates is not None
    copy = _snap("1" * 64, 1, original=B)
    choice = choose_clean(candidates, [_snap("2" * 64, 0, original=A), copy], "offsite")
    assert choice.snapshot is copy and "(its copy 11111111 in store 'offsite')" in choice.why
    forged = _snap("3" * 64, 5, original=B)
    with pytest.raises(TargetRefusedError, match="2 snapshots in store 'offsite' claim"):
        choose_clean(candidates, [copy, forged], "offsite")


@pytest.mark.parametrize("ident, original", [
    ("", None), ("b" * 8, None), ("B" * 64, None), ("b" * 63 + "/", None), ("9" * 64, "b"),
    ("9" * 64, "")])
def test_ids_read_back_from_a_store_are_validated_before_any_lookup(
        tmp_path: Path, ident: str, original: str | None) -> None:
    rt = _runtime(tmp_path)
    _attacked(rt)
    snapshot = _snap(ident, 1, original=original)
    if original == "":
        assert judged_id(snapshot) == ident  # restic's empty original: the snapshot's own id
        assert guard_verdict(rt, "planning", snapshot) is None
        return
    assert judged_id(snapshot) is None and guard_verdict(rt, "planning", snapshot) is None
    candidates = clean_candidates(rt, rt.config.agency("planning"), "docs")
    assert candidates is not None
    with pytest.raises(NotFoundError):
        choose_clean(candidates, [snapshot], "local")


def test_guard_verdict_of_valid_ids(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    _attacked(rt)
    found = guard_verdict(rt, "planning", _snap(C, 2))
    assert found is not None and found.suspect
    assert guard_verdict(rt, "planning", _snap("e" * 64, 2)) is None
    copied = guard_verdict(rt, "planning", _snap("e" * 64, 2, original=A))
    assert copied is not None and not copied.suspect


def test_no_clean_snapshot_before_the_suspect_one(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    _verdict(rt, C, "suspect", 2)
    _verdict(rt, D, "clean", 3)
    with pytest.raises(NotFoundError) as caught:
        clean_candidates(rt, rt.config.agency("planning"), "docs")
    line = caught.value.one_line()
    assert "has no clean snapshot before its suspect snapshot cccccccc (suspect because" in line
    assert "--snapshot ID or --at TIME" in line and "\n" not in line
    assert caught.value.exit_code == ExitCode.NOT_FOUND


def test_no_verdict_names_the_cause_and_the_way_on(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    agency = rt.config.agency("planning")
    assert clean_candidates(rt, agency, "docs") is None
    with pytest.raises(NotFoundError) as caught:
        require_clean_candidates(rt, agency, "docs")
    line = caught.value.one_line()
    assert "no guard verdict for source 'docs' of agency 'planning'" in line
    assert "a fresh host" in line and "planning/reports/*-guard-docs-*.json" in line
    assert "frozen" not in line
    database = no_verdict_error(rt, agency, "db", "local").one_line()
    assert "it is a sqlite source" in database and "reports" not in database
    assert "'drbackup snapshots --agency planning --source db'" in database
    assert "not in this host's config" in no_verdict_error(rt, agency, "gone", "local").message
    _verdict(rt, C, "suspect", 2)  # the freeze opens: say to take one from before it
    assert "retention is frozen since" in no_verdict_error(rt, agency, "db", "local").hint
    off = _runtime(tmp_path / "off", guard={"enabled": False})
    assert "disabled" in no_verdict_error(off, off.config.agency("planning"), "docs",
                                          "local").message


def test_sources_without_verdicts_take_the_newest_snapshot_before_the_freeze(
        tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    dumps = [_snap(str(n) * 64, n, source="db") for n in range(1, 5)]
    latest = choose_unjudged(dumps, None)
    assert latest.snapshot is dumps[-1] and latest.rule == LATEST
    assert "the agency is not frozen" in latest.why
    snapshots = _attacked(rt)  # C suspect: the freeze began at T0 + 2h05
    freeze = records.open_freeze(rt.state, "planning")
    assert freeze is not None
    before = choose_unjudged(dumps, freeze)
    assert before.snapshot is dumps[1] and before.rule == BEFORE_FREEZE  # taken at T0 + 2h
    assert "the newest before the freeze began" in before.why and "cccccccc" in before.why
    with pytest.raises(NotFoundError, match="no snapshot taken before the freeze began"):
        choose_unjudged(dumps[2:], freeze)
    agency = rt.config.agency("planning")
    assert guard_choice(rt, agency, "db", dumps, freeze, "local").rule == BEFORE_FREEZE
    docs = guard_choice(rt, agency, "docs", snapshots, freeze, "local")
    assert docs.rule == LAST_CLEAN and docs.snapshot.id == B
