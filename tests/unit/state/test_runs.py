"""The run record: how unexpected endings and crashes are written."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from drbackup.errors import StateError
from drbackup.state import StateDB
from drbackup.state.owner import owner_alive, this_process


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


def _run_in_child(db: Path, then: str) -> subprocess.Popen[str]:
    code = ("import os, signal, sys, time; from pathlib import Path; "
            "from drbackup.state import StateDB; "
            f"s = StateDB(Path({str(db)!r})); s.start_run('backup', 'a', source='s'); "
            f"print('started', flush=True); {then}")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "started"
    return child


def test_a_run_of_a_sigkilled_command_is_closed_when_the_state_is_next_opened(
        tmp_path: Path) -> None:
    child = _run_in_child(tmp_path / "state.db", "os.kill(os.getpid(), signal.SIGKILL)")
    assert child.wait(timeout=30) == -signal.SIGKILL
    (run,) = StateDB(tmp_path / "state.db").runs()
    assert run.result == "interrupted" and run.finished_at is not None
    assert run.error is not None and "SIGKILL" in run.error


def test_a_live_command_s_run_stays_open_through_a_daemon_start_and_closes_when_killed(
        tmp_path: Path) -> None:
    child = _run_in_child(tmp_path / "state.db", "time.sleep(60)")
    try:
        state = StateDB(tmp_path / "state.db")
        assert state.interrupt_unfinished_runs() == []
        assert state.close_dead_runs() == []
        assert [r.result for r in state.runs()] == ["running"]
    finally:
        child.kill()
        child.wait(timeout=30)
    assert [r.result for r in state.close_dead_runs()] == ["running"]  # as they were
    assert [r.result for r in state.runs()] == ["interrupted"]


def test_owner_tokens_tell_a_reused_pid_and_a_reboot_from_a_live_process() -> None:
    me = this_process()
    boot, pid, started = me.split(":")
    assert owner_alive(me)
    assert not owner_alive(f"{boot}:{pid}:{int(started) + 1}")      # the pid was reused
    assert not owner_alive(f"another-boot:{pid}:{started}")          # the host rebooted
    assert owner_alive("not an owner token")                          # unknown: not proven dead


def test_increment_value_counts_from_a_floor_and_never_back(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "state.db")
    assert db.increment_value("counter") == 1
    assert db.increment_value("counter") == 2
    assert db.increment_value("counter", floor=100) == 100
    assert db.increment_value("counter", floor=50) == 101
    db.set_value("counter", "garbage")
    assert db.increment_value("counter") == 1
    db.close()
