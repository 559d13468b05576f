"""The offline copy of 3-2-1-1-0 in `drbackup report` (#19), from the media catalogue of a real
state database: met with a verified medium whose newest snapshot is within [agencies.offline]
max_age; otherwise the report says why (no offline config, no verified medium, too old)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jsonschema

from drbackup.cli.output import jsonable
from drbackup.config.models import AgencyConfig, Config, DaemonConfig
from drbackup.jobs.dr_report import OfflineCopy, build_report
from drbackup.jobs.runtime import Runtime
from drbackup.state.media import FAILED, VERIFIED, WRITING, MediumRecord, record_medium

DAY = 86400.0
SCHEMA = Path(__file__).resolve().parents[3] / "docs" / "schemas" / "report.schema.json"


def _runtime(tmp_path: Path, *, offline: bool = True) -> Runtime:
    agency: dict[str, object] = {
        "id": "planning", "password_file": str(tmp_path / "pw"), "rto": "1h",
        "sources": [{"id": "docs", "kind": "directory", "paths": ["/srv/docs"]}]}
    if offline:
        agency["offline"] = {"max_age": "7d"}
    return Runtime.create(Config(daemon=DaemonConfig(state_dir=tmp_path / "state"),
                                 agencies=[AgencyConfig.model_validate(agency)]))


def _medium(rt: Runtime, label: str, state: str, newest: float | None) -> None:
    record_medium(rt.state, MediumRecord(
        label=label, agency="planning", destination="internal", sequence=1, state=state,
        written_at=time.time(), verified_at=time.time() if state == VERIFIED else None,
        location=None, snapshots=["a" * 64], files=3, bytes=100, newest_snapshot_time=newest))


def _offline(rt: Runtime, now: float) -> tuple[OfflineCopy, list[str]]:
    report = build_report(rt, list(rt.config.agencies), now=now)
    jsonschema.validate(jsonable(report), json.loads(SCHEMA.read_text()))
    agency = report.agencies[0]
    assert agency.offline_copy is not None
    return agency.offline_copy, agency.findings


def test_met_with_a_verified_medium_within_max_age(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    now = time.time()
    _medium(rt, "usb-old", VERIFIED, now - 20 * DAY)
    _medium(rt, "usb-new", VERIFIED, now - 2 * DAY)
    _medium(rt, "usb-half", WRITING, now - 60)  # not verified: does not count
    copy, findings = _offline(rt, now)
    assert copy.met is True
    assert copy.verified_media == 2
    assert copy.age_seconds == 2 * DAY
    assert copy.max_age_seconds == 7 * DAY
    assert "2.0d old" in copy.reason
    assert not [f for f in findings if "offline" in f]


def test_not_met_without_offline_config(tmp_path: Path) -> None:
    rt = _runtime(tmp_path, offline=False)
    now = time.time()
    _medium(rt, "usb-1", VERIFIED, now - DAY)
    copy, findings = _offline(rt, now)
    assert copy.met is False
    assert "no offline copy configured" in copy.reason
    assert copy.max_age_seconds is None
    assert not [f for f in findings if "offline" in f]  # not asked for: no finding


def test_not_met_without_a_verified_medium(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    now = time.time()
    _medium(rt, "usb-pulled", WRITING, now - 60)
    _medium(rt, "usb-bad", FAILED, now - 60)
    copy, findings = _offline(rt, now)
    assert copy.met is False
    assert copy.verified_media == 0
    assert copy.age_seconds is None
    assert "no verified offline medium" in copy.reason
    assert [f for f in findings if "offline" in f] == [
        "offline copy (3-2-1-1-0) not met: no verified offline medium (drbackup media export)"]


def test_not_met_when_the_newest_offline_copy_is_older_than_max_age(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    now = time.time()
    _medium(rt, "usb-1", VERIFIED, now - 10 * DAY)
    copy, findings = _offline(rt, now)
    assert copy.met is False
    assert copy.age_seconds == 10 * DAY
    assert "10.0d old" in copy.reason and "max_age 7.0d" in copy.reason
    assert [f for f in findings if "offline" in f] == [
        f"offline copy (3-2-1-1-0) not met: {copy.reason}"]
