"""The one exit-code switch (engine/classify.py), fed finished runs directly: each outcome's
error type, its hint, and that a repository's secrets never show in what it reports."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from drbackup.engine.classify import classify, error_detail, half_initialised, redact
from drbackup.engine.errors import (
    BackendAccessDenied,
    BackendUnreachable,
    RepositoryLocked,
    RepositoryMissing,
    ResticError,
    ResticInterrupted,
    ResticTimeout,
    WrongPassword,
)
from drbackup.engine.jsonlines import parse_lines
from drbackup.engine.models import RepoTarget
from drbackup.engine.runner import ProcessResult

SECRET = "very-secret-key-value"
TARGET = RepoTarget("s3:http://s3.example/bucket", Path("/pw"),
                    backend_env=(("AWS_SECRET_ACCESS_KEY", SECRET),), label="a@offsite")


def result(code: int, stderr: Sequence[str] = (), *, timed_out: bool = False,
           terminated: bool = False) -> ProcessResult:
    return ProcessResult(["restic"], code, parse_lines([]), parse_lines(list(stderr)), 0.1,
                         timed_out, terminated)


def test_success_and_ok_codes_are_no_error() -> None:
    assert classify(result(0), TARGET, "backup") is None
    assert classify(result(3), TARGET, "backup", ok_codes=(0, 3)) is None
    assert isinstance(classify(result(3), TARGET, "backup"), ResticError)


@pytest.mark.parametrize(("code", "kind", "words"), [
    (10, RepositoryMissing, "does not exist"),
    (11, RepositoryLocked, "is locked"),
    (12, WrongPassword, "wrong password"),
    (130, ResticInterrupted, "interrupted"),
    (143, ResticInterrupted, "interrupted"),
    (-15, ResticInterrupted, "interrupted"),
])
def test_exit_codes(code: int, kind: type[ResticError], words: str) -> None:
    error = classify(result(code), TARGET, "check")
    assert type(error) is kind
    assert words in error.message and "a@offsite" in error.message
    assert error.returncode == code and error.hint


def test_timeout_wins_over_the_exit_code_and_stopping_is_an_interruption() -> None:
    assert type(classify(result(0, timed_out=True), TARGET, "prune")) is ResticTimeout
    assert type(classify(result(1, terminated=True), TARGET, "prune")) is ResticInterrupted


def test_backend_failures_are_read_from_stderr_and_redacted() -> None:
    denied = classify(result(1, [f"Fatal: AccessDenied for key {SECRET}\n"]), TARGET, "backup")
    assert type(denied) is BackendAccessDenied
    assert SECRET not in denied.one_line() and SECRET not in denied.stderr_tail
    assert "[REDACTED]" in denied.stderr_tail
    down = classify(result(1, ["Fatal: dial tcp 10.0.0.1:9000: connection refused\n"]), TARGET,
                    "backup")
    assert type(down) is BackendUnreachable


def test_disk_full_hint_and_plain_failure() -> None:
    full = classify(result(1, ["write /t/x: no space left on device\n"]), TARGET, "restore")
    assert type(full) is ResticError and "out of disk space" in full.hint
    other = classify(result(1, ["Fatal: something odd\n"]), None, "version")
    assert type(other) is ResticError
    assert "restic version failed on restic (exit 1): something odd" in other.one_line()


def test_detail_names_the_first_of_many_errors() -> None:
    lines = [json.dumps({"message_type": "error", "error": {"message": "pack 1 damaged"}}),
             json.dumps({"message_type": "error", "error": {"message": "pack 2 damaged"}}),
             json.dumps({"message_type": "exit_error", "code": 1,
                         "message": "Fatal: There were 2 errors\n"})]
    assert error_detail(result(1, lines), []) == "There were 2 errors; the first: pack 1 damaged"
    assert error_detail(result(1), []) == "no error text"


def test_half_initialised_repository() -> None:
    error = half_initialised(result(1, [f"Fatal: repository already contains keys {SECRET}\n"]),
                             TARGET)
    assert error is not None and "holds a key but no config" in error.one_line()
    assert SECRET not in error.stderr_tail
    assert half_initialised(result(0), TARGET) is None
    assert half_initialised(result(1, ["Fatal: other\n"]), TARGET) is None


def test_redact_leaves_short_values_alone() -> None:
    assert redact("key abc and very-secret-key-value", ["abc", SECRET, ""]) == (
        "key abc and [REDACTED]")
