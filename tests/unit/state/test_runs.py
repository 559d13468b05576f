"""The run record: how unexpected endings and crashes are written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from drbackup.errors import StateError
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


class _FullOnUpdate:
    """The real connection, except that writing a run's end fails as on a full disk."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.full = True

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
        if self.full and sql.startswith("UPDATE runs SET finished_at"):
            raise sqlite3.OperationalError("database or disk is full")
        return self.conn.execute(sql, params)

    def __getattr__(self, name: str) -> object:
        return getattr(self.conn, name)


def test_a_run_end_that_cannot_be_written_is_written_by_the_next_transaction(
        tmp_path: Path) -> None:
    state = StateDB(tmp_path / "state.db")
    run_id = state.start_run("backup", "a", source="s")
    full = _FullOnUpdate(state._conn)
    state._conn = full  # type: ignore[assignment]
    with pytest.raises(StateError, match="disk is full"):
        state.finish_run(run_id, "failed", error="restic failed")
    assert state.unwritten_finishes == 1
    record = state.run(run_id)
    assert record is not None and record.result == "running"
    state.start_run("backup", "a", source="s")  # still full: kept for later
    assert state.unwritten_finishes == 1
    full.full = False  # space returns: the next write also writes the kept end
    state.set_value("k", "v")
    assert state.unwritten_finishes == 0
    record = state.run(run_id)
    assert record is not None and record.result == "failed"
    assert record.error == "restic failed"
