"""The run record: how unexpected endings and crashes are written."""

from __future__ import annotations

from pathlib import Path

from drbackup.state import StateDB


def test_abort_run_tells_interruption_from_failure(tmp_path: Path) -> None:
    state = StateDB(tmp_path / "state.db")
    interrupted = state.start_run("backup", "a", source="s")
    failed = state.start_run("backup", "a", source="s")
    state.abort_run(interrupted, KeyboardInterrupt())
    state.abort_run(failed, OSError("disk on fire"), details={"verdict": "error"})
    first, second = state.run(interrupted), state.run(failed)
    assert first is not None and first.result == "interrupted"
    assert second is not None and second.result == "failed"
    assert second.error == "OSError: disk on fire"
    assert second.details == {"verdict": "error"}


def test_unfinished_runs_are_closed_as_interrupted_once(tmp_path: Path) -> None:
    state = StateDB(tmp_path / "state.db")
    open_run = state.start_run("backup", "a", source="s")
    state.close()
    reopened = StateDB(tmp_path / "state.db")
    assert [r.id for r in reopened.interrupt_unfinished_runs()] == [open_run]
    assert reopened.interrupt_unfinished_runs() == []
    record = reopened.run(open_run)
    assert record is not None and record.result == "interrupted" and record.finished_at
