"""When restic fails on a guarded dump, the dump guard's report decides what the run says."""

from __future__ import annotations

from pathlib import Path

from drbackup.engine.errors import BackendUnreachable, ResticError
from drbackup.errors import ExitCode
from drbackup.jobs.backup import _dump_failure
from drbackup.sources.base import BackupPlan, DumpError, DumpReport


def plan_with(tmp_path: Path, report: DumpReport | None) -> BackupPlan:
    path = tmp_path / "report.json"
    if report is not None:
        path.write_text(report.to_json())
    return BackupPlan(stdin_command=["x"], dump_report=str(path), label="pg_dump of 'db'")


def test_a_failed_dump_becomes_a_dump_error_with_its_stderr_tail(tmp_path: Path) -> None:
    report = DumpReport(False, 10, 0.5, "pg_dump of 'db' exited with code 1", 1,
                        "pg_dump: error: connection failed\npg_dump: detail: more")
    error = _dump_failure(plan_with(tmp_path, report), ResticError("restic backup failed"))
    assert isinstance(error, DumpError) and error.exit_code == ExitCode.DUMP_FAILED
    assert error.message == ("pg_dump of 'db' exited with code 1: pg_dump: error: connection "
                             "failed; no snapshot was made")
    assert error.stderr_tail.startswith("pg_dump of 'db' exited with code 1\npg_dump: error")


def test_restic_failures_stay_restic_failures(tmp_path: Path) -> None:
    unreachable = BackendUnreachable("the store is unreachable")
    gone = DumpReport(False, 10, 0.5, "the reader went away", reader_gone=True)
    assert _dump_failure(plan_with(tmp_path, gone), unreachable) is unreachable
    fine = DumpReport(True, 10, 0.5)
    assert _dump_failure(plan_with(tmp_path, fine), unreachable) is unreachable
    assert _dump_failure(plan_with(tmp_path, None), unreachable) is unreachable
