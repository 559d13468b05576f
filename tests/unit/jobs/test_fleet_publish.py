"""The published summary from a real state database, into a local store: findings as fixed
codes from dr_report's figures, the verdict, the signature a reader checks, a sequence that
never goes back (even with the state database rebuilt), and the verdict-change test the daemon
asks before publishing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from drbackup.config.models import AgencyConfig, Config, DaemonConfig, FleetConfig, StoreConfig
from drbackup.fleet.trust import Keyring, Trust, judge
from drbackup.jobs.fleet_publish import SEQUENCE_KEY, publish_fleet, verdicts_changed
from drbackup.jobs.runtime import Runtime
from drbackup.state import RunCounts
from drbackup.state import guard as guard_records
from drbackup.verify.evidence import KEY_DIR, PUBLIC_KEY_FILE


def _runtime(tmp_path: Path, state: str = "state") -> Runtime:
    agencies = [AgencyConfig.model_validate({
        "id": agency, "password_file": str(tmp_path / "pw"), "store": "disk",
        "required_level": level,
        "sources": [{"id": "docs", "kind": "directory", "paths": ["/srv/docs"]}]})
        for agency, level in (("planning", None), ("water", 2))]
    return Runtime.create(Config(
        daemon=DaemonConfig(state_dir=tmp_path / state, hostname="Host-A"),
        stores={"disk": StoreConfig(path=tmp_path / "repos")}, agencies=agencies))


def _run(rt: Runtime, job: str, agency: str, *, verdict: str | None = None,
         snapshot: str | None = None, **details: object) -> None:
    run = rt.state.start_run(job, agency, source="docs", store="disk")
    if verdict is not None:
        details["verdict"] = verdict
    rt.state.finish_run(run, "success" if verdict in (None, "pass") else "failed",
                        counts=RunCounts(snapshot_id=snapshot), details=details,
                        error=None if verdict in (None, "pass") else "restore differs")


def _read(tmp_path: Path, rt: Runtime, agency: str) -> dict[str, object]:
    ring = tmp_path / "ring"
    ring.mkdir(exist_ok=True)
    (ring / "host-a.pem").write_bytes(
        (rt.config.daemon.state_dir / KEY_DIR / PUBLIC_KEY_FILE).read_bytes())
    body = (tmp_path / "repos" / agency / "fleet" / "host-a.json").read_bytes()
    judged = judge(body, Keyring.load(ring), now=time.time())
    assert judged.trust is Trust.TRUSTED, judged.reason
    report = json.loads(body)["report"]
    assert isinstance(report, dict)
    return report


def test_summary_codes_verdicts_and_signature(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    assert verdicts_changed(rt)  # never published
    _run(rt, "backup", "planning", snapshot="a" * 64)
    _run(rt, "drill", "planning", verdict="pass", snapshot="a" * 64, rto_estimate_seconds=40)
    _run(rt, "check", "planning", verdict="pass")
    _run(rt, "backup", "water", snapshot="b" * 64)
    _run(rt, "drill", "water", verdict="fail", snapshot="b" * 64)
    outcome = publish_fleet(rt)
    assert outcome.host == "host-a" and not outcome.failed
    planning, water = _read(tmp_path, rt, "planning"), _read(tmp_path, rt, "water")
    assert (planning["verdict"], planning["level_met"], planning["findings"]) == ("good", 1, [])
    source = planning["sources"][0]  # type: ignore[index]
    assert source["rto_estimate_seconds"] == 40 and source["last_good_backup_at"] > 0
    assert water["verdict"] == "failing" and water["level_required"] == 2
    assert water["findings"] == ["drill-failed", "never-checked"]
    text = (tmp_path / "repos" / "water" / "fleet" / "host-a.json").read_text()
    assert "restore differs" not in text and "/srv/docs" not in text  # codes, not messages
    assert not verdicts_changed(rt)
    _run(rt, "check", "water", verdict="pass")
    assert verdicts_changed(rt)  # never-checked is gone: a change of findings
    skipped = publish_fleet(rt, only_if_changed=True)
    assert skipped.skipped is None and skipped.sequence > outcome.sequence
    assert publish_fleet(rt, only_if_changed=True).skipped == "no verdict changed"
    rt.close()


def test_the_sequence_never_goes_back_even_with_a_new_state_database(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    first = publish_fleet(rt).sequence
    rt.state.set_value(SEQUENCE_KEY, str(first + 1000))  # e.g. the clock went back since
    assert publish_fleet(rt).sequence == first + 1001
    rt.close()
    rebuilt = _runtime(tmp_path, state="state-rebuilt")
    assert publish_fleet(rebuilt).sequence > first  # counts on from the wall clock (ms)
    rebuilt.close()


def test_history_from_recorded_runs_worst_rpo_per_day_and_drill_codes(tmp_path: Path) -> None:
    """Backups and drills recorded at known times over 40 days: the published history is the
    worst RPO of each day (the 3-day gap shows), the drills of the window with their codes and
    RTOs (a drill of a suspect snapshot is "suspect"), no file name and no error text; the
    agency's drill-age limit; and it stays within its byte bound."""
    rt = _runtime(tmp_path)
    now = time.time()
    day = 86400.0
    backups = [now - d * day for d in range(40, 12, -1)] + [now - d * day for d in (9, 8, 0.5)]
    for at in backups:
        run = rt.state.start_run("backup", "planning", source="docs", store="disk",
                                 started_at=at - 60)
        rt.state.finish_run(run, "success", counts=RunCounts(snapshot_id="a" * 64),
                            finished_at=at)
    failed = rt.state.start_run("backup", "planning", source="docs", store="disk",
                                started_at=now - 5 * day)
    rt.state.finish_run(failed, "failed", error="cannot read /srv/docs/secret.doc",
                        finished_at=now - 5 * day)  # a failed backup is no good backup
    for at, verdict, snapshot, rto in ((now - 35 * day, "pass", "a" * 64, 5.0),  # outside
                                       (now - 20 * day, "pass", "a" * 64, 41.26),
                                       (now - 10 * day, "fail", "a" * 64, None),
                                       (now - 2 * day, "pass", "c" * 64, 50.0)):
        run = rt.state.start_run("drill", "planning", source="docs", store="disk",
                                 started_at=at - 30)
        details: dict[str, object] = {"verdict": verdict, "snapshot_id": snapshot}
        if rto is not None:
            details["rto_estimate_seconds"] = rto
        rt.state.finish_run(run, "success" if verdict == "pass" else "failed",
                            counts=RunCounts(snapshot_id=snapshot), details=details,
                            error=None if verdict == "pass" else "restore of /srv/docs differs",
                            finished_at=at)
    guard_records.record_verdict(rt.state, guard_records.NewVerdict(
        "planning", "docs", "c" * 64, None, guard_records.SUSPECT, None, ["mass-rename"],
        ["mass rename"], {}))
    publish_fleet(rt, now=now)
    report = _read(tmp_path, rt, "planning")
    assert report["verify_max_age_seconds"] == 8 * day
    history = report["sources"][0]["history"]  # type: ignore[index]
    assert history["window_seconds"] == 30 * day and len(history["rpo"]) == 30
    worst = [seconds for _, seconds in history["rpo"]]
    assert worst[0] == pytest.approx(day, abs=2)  # daily backups
    assert worst[19] == pytest.approx(3 * day, abs=2)  # 10 days ago: 3 days since day 13
    assert max(worst) == worst[-1] == pytest.approx(7.5 * day, abs=2)  # day 8 to half a day
    assert [(round((now - at) / day), code, rto) for at, code, rto in history["drills"]] == [
        (20, "ok", 41.3), (10, "failed", None), (2, "suspect", 50.0)]
    text = (tmp_path / "repos" / "planning" / "fleet" / "host-a.json").read_text()
    assert "/srv/docs" not in text and "differs" not in text and "rename" not in text
    assert len(json.dumps(history)) < 4096
    # water's only good backup is 70 days old, before the rows read: it still opens the gap.
    run = rt.state.start_run("backup", "water", source="docs", store="disk",
                             started_at=now - 70 * day)
    rt.state.finish_run(run, "success", counts=RunCounts(snapshot_id="b" * 64),
                        finished_at=now - 70 * day)
    publish_fleet(rt, now=now)
    rpo = _read(tmp_path, rt, "water")["sources"][0]["history"]["rpo"]  # type: ignore[index]
    assert len(rpo) == 30 and rpo[-1][1] == pytest.approx(70 * day, abs=2)
    rt.close()


def test_a_configured_history_window(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    config = rt.config.model_copy(update={"fleet": FleetConfig(history_window="7d")})
    rt.close()
    rt = Runtime.create(config)
    now = time.time()
    run = rt.state.start_run("backup", "planning", source="docs", store="disk",
                             started_at=now - 10 * 86400)
    rt.state.finish_run(run, "success", counts=RunCounts(snapshot_id="a" * 64),
                        finished_at=now - 10 * 86400)
    publish_fleet(rt, now=now)
    history = _read(tmp_path, rt, "planning")["sources"][0]["history"]  # type: ignore[index]
    assert history["window_seconds"] == 7 * 86400 and len(history["rpo"]) == 30
    assert history["rpo"][0] == [round(now - 7 * 86400 + 7 * 86400 / 30),
                                 round(3 * 86400 + 7 * 86400 / 30)]
    rt.close()
    for bad in ("12h", "400d"):
        with pytest.raises(ValueError, match="history_window"):
            FleetConfig(history_window=bad)
