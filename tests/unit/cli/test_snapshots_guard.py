"""`drbackup snapshots` shows the ransomware guard's mark of each snapshot (#16): the GUARD
column and the --json fields, for clean, suspect, released and unassessed snapshots."""

from __future__ import annotations

from drbackup.cli.commands.snapshots import guard_column, guard_fields
from drbackup.state.guard import VerdictRecord


def _verdict(verdict: str, *, false_alarm: bool = False) -> VerdictRecord:
    return VerdictRecord(1, "planning", "docs", "c" * 64, 3, 0.0, verdict, 0.9, ["content"],
                         ["60 of 60 sampled look encrypted"], {}, {}, false_alarm)


def test_suspect_clean_released_and_unassessed() -> None:
    assert guard_column(_verdict("suspect")) == "SUSPECT"
    assert guard_fields(_verdict("suspect")) == {
        "guard": "suspect", "suspect": True, "false_alarm": False,
        "suspect_reasons": ["60 of 60 sampled look encrypted"]}
    assert guard_column(_verdict("clean")) == "clean"
    assert guard_fields(_verdict("clean")) == {
        "guard": "clean", "suspect": False, "suspect_reasons": [], "false_alarm": False}
    released = _verdict("suspect", false_alarm=True)
    assert guard_column(released) == "false-alarm"
    assert guard_fields(released) == {
        "guard": "clean", "suspect": False, "suspect_reasons": [], "false_alarm": True}
    assert guard_column(None) == "-"
    assert guard_fields(None) == {
        "guard": None, "suspect": False, "suspect_reasons": [], "false_alarm": False}
