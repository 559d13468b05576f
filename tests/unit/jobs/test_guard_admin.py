"""`drbackup guard release` and `guard status` (#16) with a real runtime on a local store: a
release needs a reason, names a suspect snapshot only with --false-alarm, is recorded as a
'guard-release' run with the user and the reason, and is published as a signed report in the
state directory and the store; a false alarm teaches its rules and leaves the freeze while
another suspect snapshot is in it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drbackup.config.models import Config
from drbackup.errors import NotFoundError, UsageError
from drbackup.jobs.guard_admin import guard_status, release
from drbackup.jobs.runtime import Runtime
from drbackup.state import guard as records
from drbackup.state.guard import CLEAN, SUSPECT, NewVerdict
from drbackup.verify.evidence import load_public_key, verify_envelope

AGENCY = "planning"


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    password = tmp_path / "pw"
    password.write_text("x")
    (tmp_path / "docs").mkdir()
    config = Config.model_validate({
        "daemon": {"state_dir": str(tmp_path / "state"), "cache_dir": str(tmp_path / "cache"),
                   "hostname": "fileserver"},
        "stores": {"disk": {"path": str(tmp_path / "store")}},
        "agencies": [{"id": AGENCY, "password_file": str(password), "store": "disk",
                      "sources": [
                          {"id": "docs", "kind": "directory", "paths": [str(tmp_path / "docs")]},
                          {"id": "mail", "kind": "directory", "paths": [str(tmp_path / "docs")]},
                      ]}],
    })
    runtime = Runtime.create(config)
    yield runtime
    runtime.close()


def _id(n: int) -> str:
    return f"{n:08x}" * 8


def _verdict(rt: Runtime, n: int, verdict: str = CLEAN, source: str = "docs",
             values: dict[str, float] | None = None) -> records.VerdictRecord:
    rules = sorted(values) if values else []
    return records.record_verdict(rt.state, NewVerdict(
        AGENCY, source, _id(n), n, verdict, 0.02, rules, [f"reason {n}"], {"files": 100},
        values or {}))


def _agency(rt: Runtime) -> Any:
    return rt.config.agency(AGENCY)


def _signed(rt: Runtime, path: str) -> dict[str, Any]:
    """The report at `path`, checked against the daemon's public key."""
    key = load_public_key(rt.config.daemon.state_dir / "evidence" / "ed25519.pub.pem")
    return verify_envelope(json.loads(Path(path).read_text()), key).report


@pytest.mark.parametrize("reason", ["", "   ", "\n\t"])
def test_a_release_needs_a_reason(rt: Runtime, reason: str) -> None:
    _verdict(rt, 1, SUSPECT, values={"content": 40})
    with pytest.raises(UsageError, match="--reason is empty"):
        release(rt, _agency(rt), reason=reason, by="alice")
    with pytest.raises(UsageError, match="at most 500"):
        release(rt, _agency(rt), reason="x" * 501, by="alice")
    assert records.open_freeze(rt.state, AGENCY) is not None
    assert rt.state.runs(job="guard-release") == []


def test_snapshot_and_false_alarm_go_together(rt: Runtime) -> None:
    _verdict(rt, 1, SUSPECT, values={"content": 40})
    with pytest.raises(UsageError, match="go together"):
        release(rt, _agency(rt), reason="checked", snapshot=_id(1), by="alice")
    with pytest.raises(UsageError, match="go together"):
        release(rt, _agency(rt), reason="checked", false_alarm=True, by="alice")
    assert records.open_freeze(rt.state, AGENCY) is not None


@pytest.mark.parametrize("snapshot", ["0001", "not-hex-at-all", "g" * 8, "0" * 65, ""])
def test_a_snapshot_that_is_not_an_id_is_a_usage_error(rt: Runtime, snapshot: str) -> None:
    _verdict(rt, 1, SUSPECT, values={"content": 40})
    with pytest.raises(UsageError, match="not a snapshot id"):
        release(rt, _agency(rt), reason="checked", snapshot=snapshot, false_alarm=True,
                by="alice")


def test_an_unknown_or_clean_snapshot_is_refused(rt: Runtime) -> None:
    _verdict(rt, 1, CLEAN)
    _verdict(rt, 2, SUSPECT, values={"content": 40})
    with pytest.raises(NotFoundError, match="no guard verdict"):
        release(rt, _agency(rt), reason="checked", snapshot="deadbeef", false_alarm=True,
                by="alice")
    with pytest.raises(UsageError, match="judged clean"):
        release(rt, _agency(rt), reason="checked", snapshot=_id(1)[:8], false_alarm=True,
                by="alice")
    assert rt.state.runs(job="guard-release") == []


def test_without_a_freeze_there_is_nothing_to_release(rt: Runtime) -> None:
    _verdict(rt, 1, CLEAN)
    with pytest.raises(NotFoundError, match="has no retention freeze"):
        release(rt, _agency(rt), reason="checked", by="alice")
    assert rt.state.runs(job="guard-release") == []


def test_a_false_alarm_with_another_suspect_in_the_freeze_leaves_it_frozen(
        rt: Runtime) -> None:
    _verdict(rt, 1, CLEAN)
    first = _verdict(rt, 2, SUSPECT, values={"content": 40.0, "notes": 4.0})
    other = _verdict(rt, 3, SUSPECT, source="mail", values={"renames": 60.0})
    outcome = release(rt, _agency(rt), reason="the nightly re-encode of scans",
                      snapshot=_id(2)[:12].upper(), false_alarm=True, by="alice")
    assert not outcome.released
    assert [v.snapshot_id for v in outcome.still_suspect] == [other.snapshot_id]
    assert outcome.false_alarm is not None and outcome.false_alarm.id == first.id
    assert outcome.false_alarm.false_alarm
    freeze = records.open_freeze(rt.state, AGENCY)
    assert freeze is not None and freeze.snapshot_id == first.snapshot_id
    marked = records.verdict_for(rt.state, AGENCY, _id(2))
    assert marked is not None and marked.false_alarm and not marked.suspect
    # Its rules learned a quarter more than they saw; the other source learned nothing.
    assert records.allowances(rt.state, AGENCY, "docs") == {"content": 50.0, "notes": 5.0}
    assert records.allowances(rt.state, AGENCY, "mail") == {}
    [run] = rt.state.runs(job="guard-release")
    assert run.result == "success" and run.source == "docs" and run.agency == AGENCY
    assert run.details is not None
    assert run.details["freeze_closed"] is False
    assert run.details["still_suspect"] == [other.snapshot_id]
    assert run.details["false_alarm"]["snapshot_id"] == first.snapshot_id
    assert run.details["false_alarm"]["false_alarm"] is True
    assert outcome.report is not None
    signed = _signed(rt, outcome.report)
    assert signed["false_alarm"]["false_alarm"] is True
    assert signed["still_suspect"] == [other.snapshot_id] and signed["released_by"] == "alice"
    assert signed["reason"] == "the nightly re-encode of scans"
    # The last clean snapshot of docs is now the false alarm itself.
    status = guard_status(rt, _agency(rt))
    docs, mail = status.sources
    assert docs.last_clean is not None and docs.last_clean.snapshot_id == first.snapshot_id
    assert docs.suspects == [] and [v.id for v in mail.suspects] == [other.id]
    assert mail.last_clean is None

    # The second false alarm closes the freeze, recorded as a false alarm.
    second = release(rt, _agency(rt), reason="mail archive moved", snapshot=_id(3),
                     false_alarm=True, by="bob")
    assert second.released and second.still_suspect == []
    assert records.open_freeze(rt.state, AGENCY) is None
    [closed] = records.freezes(rt.state, AGENCY)
    assert (closed.released_by, closed.release_reason, closed.false_alarm) == (
        "bob", "mail archive moved", True)
    assert records.allowances(rt.state, AGENCY, "mail") == {"renames": 75.0}


def test_a_whole_release_closes_the_freeze_and_is_recorded_and_signed(rt: Runtime) -> None:
    good = _verdict(rt, 1, CLEAN)
    first = _verdict(rt, 2, SUSPECT, values={"content": 400.0})
    _verdict(rt, 3, SUSPECT, source="mail", values={"notes": 9.0})
    outcome = release(rt, _agency(rt), reason="  restored docs from\n 01010101; mail "
                      "cleaned  ", by="alice (via sudo as root)")
    assert outcome.released and outcome.false_alarm is None
    assert [v.snapshot_id for v in outcome.still_suspect] == []
    assert records.open_freeze(rt.state, AGENCY) is None
    [closed] = records.freezes(rt.state, AGENCY)
    assert closed.released_by == "alice (via sudo as root)" and not closed.false_alarm
    assert closed.release_reason == "restored docs from 01010101; mail cleaned"
    # Nothing was taught, the verdicts stay suspect (the incident was real).
    assert records.allowances(rt.state, AGENCY, "docs") == {}
    after = records.verdict_for(rt.state, AGENCY, first.snapshot_id)
    assert after is not None and after.suspect

    [run] = rt.state.runs(job="guard-release")
    assert run.id == outcome.run_id and run.result == "success" and run.source is None
    assert run.trigger == "cli" and run.details is not None
    assert run.details["released_by"] == "alice (via sudo as root)"
    assert run.details["reason"] == "restored docs from 01010101; mail cleaned"
    assert run.details["freeze"]["snapshot_id"] == first.snapshot_id
    assert run.details["freeze_closed"] is True and run.details["host"] == "fileserver"

    # Signed, in the state directory and in the store.
    state_reports = list((rt.config.daemon.state_dir / "reports" / AGENCY).glob("*.json"))
    assert len(state_reports) == 1
    assert f"-guard-release-agency-run{run.id}.json" in state_reports[0].name
    report = _signed(rt, str(state_reports[0]))
    assert report["kind"] == "guard-release" and report["released_by"] == run.details[
        "released_by"] and report["reason"] == run.details["reason"]
    assert outcome.report is not None
    assert Path(outcome.report).read_bytes() == state_reports[0].read_bytes()
    store_path = rt.config.store("disk").path
    assert store_path is not None
    assert Path(outcome.report).parent == store_path / AGENCY / "reports"
    # Once released, the newest clean snapshot counts again.
    assert guard_status(rt, _agency(rt)).sources[0].last_clean == good


def test_a_false_alarm_after_the_freeze_was_released_still_teaches(rt: Runtime) -> None:
    _verdict(rt, 1, SUSPECT, values={"extensions": 8.0})
    release(rt, _agency(rt), reason="handled", by="alice")
    outcome = release(rt, _agency(rt), reason="it was the wallet app", snapshot=_id(1),
                      false_alarm=True, by="alice")
    assert not outcome.released and outcome.still_suspect == []
    assert records.allowances(rt.state, AGENCY, "docs") == {"extensions": 10.0}
    assert len(rt.state.runs(job="guard-release")) == 2
    assert len(records.freezes(rt.state, AGENCY)) == 1
