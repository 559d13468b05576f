"""One way to record a run (#15 item 1): however a job's body ends, its run is closed the same
way — success, its own result, interrupted (restic interrupted, Ctrl-C, a stop signal), failed
with the error line and the tool's stderr tail, or failed naming an unexpected exception — and
nothing a job does can leave it 'running'."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from drbackup.engine import ResticError, ResticInterrupted
from drbackup.errors import DrBackupError
from drbackup.jobs.recording import record_failed_run, recorded_run
from drbackup.state import RunRecord, StateDB


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Any]:
    state = StateDB(tmp_path / "state.db")
    yield SimpleNamespace(state=state)
    state.close()


def _only(rt: Any) -> RunRecord:
    [run] = rt.state.runs(job="check")
    return run  # type: ignore[no-any-return]


def _run(rt: Any, body_error: BaseException | None, **options: Any) -> None:
    with recorded_run(rt, "check", "planning", store="local", **options):
        if body_error is not None:
            raise body_error


def test_a_body_that_ends_is_a_success(rt: Any) -> None:
    _run(rt, None)
    run = _only(rt)
    assert run.result == "success" and run.error is None and run.finished_at is not None


def test_restic_interrupted_is_interrupted_with_its_tail(rt: Any) -> None:
    with pytest.raises(ResticInterrupted):
        _run(rt, ResticInterrupted("check on a was interrupted", "run it again",
                                   stderr_tail="signal interrupt received"),
             failure_details=lambda: {"kind": "structure"})
    run = _only(rt)
    assert run.result == "interrupted" and "was interrupted" in (run.error or "")
    assert run.details == {"kind": "structure", "stderr_tail": "signal interrupt received"}


def test_an_expected_failure_is_failed_with_its_line_tail_and_hook(rt: Any) -> None:
    seen: list[str] = []
    with pytest.raises(ResticError):
        _run(rt, ResticError("restic check failed", "see the log", stderr_tail="x" * 5000),
             on_failure=lambda outcome, exc: seen.append(outcome))
    run = _only(rt)
    assert seen == ["failed"] and run.result == "failed"
    assert run.error is not None and run.error.startswith("restic check failed")
    assert run.details is not None and len(run.details["stderr_tail"]) == 2000


@pytest.mark.parametrize(("error", "result", "text"), [
    (KeyboardInterrupt("SIGTERM"), "interrupted", "interrupted (SIGTERM)"),
    (KeyboardInterrupt(), "interrupted", "interrupted (Ctrl-C or SIGINT)"),
    (RuntimeError("bug"), "failed", "RuntimeError: bug"),
])
def test_unexpected_endings(rt: Any, error: BaseException, result: str, text: str) -> None:
    with pytest.raises(type(error)):
        _run(rt, error)
    run = _only(rt)
    assert run.result == result and run.error == text


def test_a_result_the_body_chose_stays_when_it_raises_after(rt: Any) -> None:
    with pytest.raises(DrBackupError), recorded_run(rt, "check", "planning") as run:
        run.finish("failed", error="evidence not written: disk full")
        raise DrBackupError("evidence not written: disk full")
    recorded = _only(rt)
    assert recorded.result == "failed" and recorded.error == "evidence not written: disk full"


def test_a_run_that_failed_before_its_job_started(rt: Any) -> None:
    run_id = record_failed_run(rt, "check", "planning", DrBackupError("repository not usable"))
    recorded = _only(rt)
    assert recorded.id == run_id and recorded.result == "failed"


PACKAGE = Path(__file__).resolve().parents[3] / "drbackup"
RECORDERS = {"start_run", "finish_run", "abort_run"}
ALLOWED = {"drbackup/jobs/recording.py"}  # and the state database itself


def _direct_recorders(root: Path) -> list[str]:
    """Every call of state.start_run/finish_run/abort_run outside the one way to record."""
    import ast

    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root.parent).as_posix()
        if relative in ALLOWED or relative.startswith("drbackup/state/"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in RECORDERS):
                found.append(f"{relative}:{node.lineno} {node.func.attr}")
    return found


def test_every_job_records_its_run_through_recorded_run(tmp_path: Path) -> None:
    assert _direct_recorders(PACKAGE) == []
    # The rule really looks: a job that writes its own run is caught.
    bad = tmp_path / "drbackup" / "jobs"
    bad.mkdir(parents=True)
    (bad / "sneaky.py").write_text("def job(rt):\n    rt.state.start_run('x', 'a')\n")
    assert _direct_recorders(tmp_path / "drbackup") == ["drbackup/jobs/sneaky.py:2 start_run"]
