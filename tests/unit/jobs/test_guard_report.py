"""The ransomware guard in drills and in `drbackup report` (#16), on a real state database: a
drill of a suspect snapshot gets the finding that makes it a "warning" and is no good drill in
the report while the verdict stands; a frozen agency meets no level until released, and says
why and what its figures alone would meet."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from drbackup.config.models import AgencyConfig, Config, DaemonConfig
from drbackup.engine import Snapshot
from drbackup.jobs.dr_report import build_report
from drbackup.jobs.drills.common import DrillRecord, mark_suspect
from drbackup.jobs.evidence import utc_iso
from drbackup.jobs.runtime import Runtime
from drbackup.state import RunCounts
from drbackup.state import guard as records

A, C = "a" * 64, "c" * 64


def _runtime(tmp_path: Path) -> Runtime:
    return Runtime.create(Config(daemon=DaemonConfig(state_dir=tmp_path / "state"), agencies=[
        AgencyConfig.model_validate({
            "id": "planning", "password_file": str(tmp_path / "pw"), "rto": "1h",
            "sources": [{"id": "docs", "kind": "directory", "paths": ["/srv/docs"]}]})]))


def _verdict(rt: Runtime, snapshot_id: str, verdict: str) -> records.VerdictRecord:
    return records.record_verdict(rt.state, records.NewVerdict(
        "planning", "docs", snapshot_id, None, verdict, 0.5, ["content"],
        ["60 of 60 sampled look encrypted"] if verdict == "suspect" else [], {}))


def _run(rt: Runtime, job: str, *, snapshot_id: str, verdict: str | None = None) -> int:
    run_id = rt.state.start_run(job, "planning", source="docs", store="local")
    if job == "backup":
        rt.state.finish_run(run_id, "success", counts=RunCounts(snapshot_id=snapshot_id))
    else:
        rt.state.finish_run(run_id, "success" if verdict == "pass" else "warning", details={
            "kind": "files", "verdict": verdict, "snapshot_id": snapshot_id,
            "rto_estimate_seconds": 10.0})
    return run_id


def _snapshot(ident: str) -> Snapshot:
    return Snapshot(id=ident, time=datetime(2026, 12, 7, 1, 0, tzinfo=UTC), hostname="h",
                    paths=["/srv/docs"], tags=["agency=planning", "source=docs"])


def test_a_drill_of_a_suspect_snapshot_says_it_proves_nothing(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    agency = rt.config.agency("planning")
    _verdict(rt, A, "clean")
    suspect = _verdict(rt, C, "suspect")
    record = DrillRecord("files", findings=["estimated full restore 9000s exceeds the RTO"])
    record.snapshot = _snapshot(C)
    mark_suspect(rt, agency, record)
    assert record.findings == [
        "snapshot cccccccc is suspect (ransomware guard): a byte-identical restore of it is "
        "not a proof of recoverability", "estimated full restore 9000s exceeds the RTO"]
    assert record.reasons == []  # a finding: the verdict is "warning", not "fail"
    assert record.report["guard"] == record.details["guard"] == {
        "verdict": "suspect", "snapshot_id": C, "reasons": ["60 of 60 sampled look encrypted"]}
    for snapshot in (_snapshot(A), _snapshot("e" * 64), _snapshot("c" * 8), None):
        other = DrillRecord("files")
        other.snapshot = snapshot
        mark_suspect(rt, agency, other)
        assert other.findings == [] and "guard" not in other.report
    records.mark_false_alarm(rt.state, suspect, {})
    released = DrillRecord("files")
    released.snapshot = _snapshot(C)
    mark_suspect(rt, agency, released)
    assert released.findings == []


def test_a_frozen_agency_meets_no_level_until_released(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    _verdict(rt, A, "clean")
    _run(rt, "backup", snapshot_id=A)
    good = _run(rt, "drill", snapshot_id=A, verdict="pass")
    [agency] = build_report(rt, rt.config.agencies).agencies
    level = agency.gbt_20988.level
    assert level is not None and level >= 1 and not any("frozen" in f for f in agency.findings)

    suspect = _verdict(rt, C, "suspect")
    _run(rt, "backup", snapshot_id=C)
    drilled = _run(rt, "drill", snapshot_id=C, verdict="warning")
    freeze = records.open_freeze(rt.state, "planning")
    assert freeze is not None
    since = utc_iso(float(int(freeze.since)))
    [agency] = build_report(rt, rt.config.agencies).agencies
    assert agency.gbt_20988.level is None and agency.gbt_20988.name is None
    assert agency.findings[0] == (f"retention frozen since {since}: snapshot cccccccc of source "
                                  "'docs' is suspect (60 of 60 sampled look encrypted)")
    blockers = agency.gbt_20988.next_level_blockers
    assert blockers[0] == (
        f"retention frozen since {since} by suspect snapshot cccccccc: no "
        "level counts until it is released ('drbackup guard release --agency planning')")
    assert blockers[1].startswith(f"the figures alone meet level {level} (")
    [docs] = agency.sources
    assert docs.last_drill is not None and docs.last_drill.run_id == drilled
    assert docs.last_good_drill is not None and docs.last_good_drill.run_id == good
    assert ("last drill restored suspect snapshot cccccccc (ransomware guard): not counted as "
            "a good drill") in docs.findings

    records.mark_false_alarm(rt.state, suspect, {})
    records.close_freeze(rt.state, freeze, by="tester", reason="a re-encoding job",
                         false_alarm=True, at=time.time())
    [agency] = build_report(rt, rt.config.agencies).agencies
    assert agency.gbt_20988.level == level and not any("frozen" in f for f in agency.findings)
    [docs] = agency.sources
    assert docs.last_good_drill is not None and docs.last_good_drill.run_id == drilled
