"""One way to record a run (#15 item 1): start it, let the job's body run, close it.

    with recorded_run(rt, "check", agency.id, store=name, trigger=trigger,
                      failure_details=lambda: {"kind": kind}) as run:
        ...
        run.finish("success", details={...})   # or leave it: a body that ends is a success

However the body ends, the run is closed the same way in every job:

- it called `run.finish(...)`: that result (a body may finish "failed" and return normally);
- it ended without finishing: "success";
- restic was interrupted (`ResticInterrupted`): "interrupted", with the error line;
- any other `DrBackupError`: "failed", with the error line and the tool's stderr tail;
- Ctrl-C, SIGTERM/SIGHUP (`KeyboardInterrupt`): "interrupted (<signal>)";
- anything else (a bug): "failed", the exception named.

`failure_details` adds the job's own keys to a failed or interrupted run; `on_failure` runs before
the run is recorded (log there first: recording may fail too, on a full state disk). The run's
owner (pid and start time) is recorded by the state database, so a run whose process was killed
is closed later by whoever notices (`close_dead_runs`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from drbackup.engine import ResticInterrupted
from drbackup.errors import DrBackupError
from drbackup.jobs.runtime import Runtime
from drbackup.state import RunCounts

Details = dict[str, Any]
STDERR_KEPT = 2000  # characters of a failed tool's stderr kept in the run's details


@dataclass
class RecordedRun:
    _rt: Runtime
    run_id: int
    job: str
    fields: dict[str, str] = field(default_factory=dict)  # for the job's log lines
    finished: bool = False

    def finish(self, result: str = "success", *, counts: RunCounts | None = None,
               error: str | None = None, details: Details | None = None) -> None:
        """Close the run now with this result (once; later exceptions leave it as it is)."""
        self.finished = True
        self._rt.state.finish_run(self.run_id, result, counts=counts, error=error,
                                  details=details)


def failure_result(exc: BaseException) -> str:
    """The result a run ended by this exception gets."""
    return "interrupted" if isinstance(exc, ResticInterrupted | KeyboardInterrupt) else "failed"


@contextmanager
def recorded_run(rt: Runtime, job: str, agency: str, *, source: str | None = None,
                 store: str | None = None, trigger: str = "cli",
                 failure_details: Callable[[], Details] | None = None,
                 on_failure: Callable[[str, DrBackupError], None] | None = None
                 ) -> Iterator[RecordedRun]:
    run_id = rt.state.start_run(job, agency, source=source, store=store, trigger=trigger)
    fields = {"agency": agency, "job": job, "run_id": str(run_id), "trigger": trigger}
    if source is not None:
        fields["source"] = source
    run = RecordedRun(rt, run_id, job, fields)
    try:
        yield run
    except DrBackupError as exc:
        if run.finished:
            raise
        outcome = failure_result(exc)
        if on_failure is not None:
            on_failure(outcome, exc)
        details = dict(failure_details() if failure_details else {})
        tail = getattr(exc, "stderr_tail", "")
        if tail:
            details["stderr_tail"] = tail[-STDERR_KEPT:]
        run.finish(outcome, error=exc.one_line(), details=details or None)
        raise
    except BaseException as exc:
        if not run.finished:
            run.finished = True
            rt.state.abort_run(run_id, exc,
                               details=(failure_details() if failure_details else None) or None)
        raise
    if not run.finished:
        run.finish("success")


def record_failed_run(rt: Runtime, job: str, agency: str, exc: DrBackupError, *,
                      source: str | None = None, store: str | None = None,
                      trigger: str = "cli") -> int:
    """A run that failed before its job could start (e.g. the daemon found the repository
    unusable): recorded as the job's runs are. Returns its id."""
    with recorded_run(rt, job, agency, source=source, store=store, trigger=trigger) as run:
        run.finish(failure_result(exc), error=exc.one_line())
    return run.run_id
