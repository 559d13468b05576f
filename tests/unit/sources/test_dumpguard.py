"""The dump guard judges a dump by its exit, its signal, its time and its size, and passes the
bytes through unchanged."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from drbackup.sources.base import DumpReport
from drbackup.sources.dumpguard import guard


def run(command: list[str], *, min_size: int = 0, timeout: float = 30
        ) -> tuple[DumpReport, bytes, str]:
    out = io.BytesIO()
    err = io.StringIO()
    report = guard(command, min_size=min_size, timeout=timeout, label="the dump", out=out,
                   err=err)
    return report, out.getvalue(), err.getvalue()


def test_a_good_dump_passes_through_unchanged() -> None:
    report, data, err = run(["sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x"], min_size=10)
    assert report.ok and report.bytes == 300000 and data == b"x" * 300000
    assert err == "" and report.seconds >= 0


def test_a_non_zero_exit_fails_with_the_stderr_tail() -> None:
    report, _data, err = run(["sh", "-c", "echo partial; echo 'pg_dump: error: boom' >&2; "
                              "exit 3"])
    assert not report.ok and report.returncode == 3
    assert report.reason == "the dump exited with code 3"
    assert "pg_dump: error: boom" in report.stderr_tail and "pg_dump: error: boom" in err


def test_a_killed_dump_fails() -> None:
    report, _data, _err = run(["sh", "-c", "echo some; kill -9 $$"])
    assert not report.ok and "SIGKILL" in report.reason


def test_a_dump_below_min_size_fails() -> None:
    report, _data, err = run(["echo", "tiny"], min_size=1024)
    assert not report.ok and "less than the minimum plausible size" in report.reason
    assert "only 5 bytes" in err


def test_a_dump_past_its_time_limit_is_stopped() -> None:
    report, _data, _err = run(["sleep", "30"], timeout=0.5)
    assert not report.ok and "did not finish within" in report.reason
    assert report.seconds < 20


def test_a_missing_program_fails() -> None:
    report, _data, _err = run(["/nonexistent/pg_dump"])
    assert not report.ok and "could not be started" in report.reason


@pytest.mark.parametrize("exit_code", [0, 1])
def test_the_command_line_form_writes_a_report_and_exit_code(tmp_path: Path,
                                                             exit_code: int) -> None:
    report_path = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "drbackup.sources.dumpguard", "--min-size", "3", "--report",
         str(report_path), "--", "sh", "-c", f"printf abcdef; exit {exit_code}"],
        capture_output=True, check=False,
        env={"PATH": "/usr/bin:/bin", "RESTIC_PASSWORD_FILE": "/secret"})
    assert done.stdout == b"abcdef"
    assert done.returncode == exit_code
    report = DumpReport.read(report_path)
    assert report is not None and report.ok == (exit_code == 0) and report.bytes == 6


def test_restic_and_store_secrets_do_not_reach_the_dump(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "drbackup.sources.dumpguard", "--", "env"],
        capture_output=True, check=True, text=True,
        env={"PATH": "/usr/bin:/bin", "RESTIC_PASSWORD_FILE": "/secret",
             "AWS_SECRET_ACCESS_KEY": "s3cr3t", "PGPASSFILE": "/run/pgpass"})
    assert "PGPASSFILE=/run/pgpass" in done.stdout
    assert "RESTIC_" not in done.stdout and "AWS_" not in done.stdout
