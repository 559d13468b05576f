"""The published summary from a real state database, into a local store: findings as fixed
codes from dr_report's figures, the verdict, the signature a reader checks, a sequence that
never goes back (even with the state database rebuilt), and the verdict-change test the daemon
asks before publishing."""

from __future__ import annotations

import json
import time
from pathlib import Path

from drbackup.config.models import AgencyConfig, Config, DaemonConfig, StoreConfig
from drbackup.fleet.trust import Keyring, Trust, judge
from drbackup.jobs.fleet_publish import SEQUENCE_KEY, publish_fleet, verdicts_changed
from drbackup.jobs.runtime import Runtime
from drbackup.state import RunCounts
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
