"""The live view: thread-safe figures, overflow counts persisted across restarts."""

from __future__ import annotations

from pathlib import Path

from drbackup.daemon.live import LiveStatus
from drbackup.state import StateDB


def test_overflow_counts_survive_a_restart(tmp_path: Path) -> None:
    state = StateDB(tmp_path / "state.db")
    live = LiveStatus(state, lambda: (1, 4))
    assert live.count_overflow(("a", "s")) == 1
    assert live.count_overflow(("a", "s")) == 2
    live.count_watch_error(("b", "t"))
    live.set_pending(("a", "s"), 7)
    live.set_next_run(("a", "s"), 123.0)
    assert (live.jobs_running(), live.jobs_queued()) == (1, 4)
    assert live.pending_changes() == {("a", "s"): 7}
    assert live.next_runs() == {("a", "s"): 123.0}
    state.close()

    again = LiveStatus(StateDB(tmp_path / "state.db"), lambda: (0, 0))
    assert again.watch_overflows() == {("a", "s"): 2}
    assert again.watch_errors() == {("b", "t"): 1}
    assert again.pending_changes() == {}
