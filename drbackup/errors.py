"""The error family every expected failure belongs to, and the exit codes the CLI maps them to.

Every expected failure is a `DrBackupError`: it carries a one-line message naming the cause, a
hint saying what to do, and the process exit code. The CLI prints `error: <message> (<hint>)`
and never a traceback for these.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, documented in README.md; stable across releases."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    PARTIAL = 3  # backup made, but some files could not be read
    CONFIG = 4
    RESTIC_MISSING = 5
    RESTIC_TOO_OLD = 6
    STORE_UNREACHABLE = 7
    STORE_CREDENTIALS = 8
    STORE_ACCESS = 9
    REPO_MISSING = 10
    REPO_LOCKED = 11
    WRONG_PASSWORD = 12
    SOURCE_MISSING = 13
    TARGET_REFUSED = 14
    RESTIC_FAILED = 15
    TIMEOUT = 16
    DUMP_FAILED = 17
    VERIFY_FAILED = 18
    NOT_FOUND = 19
    ALREADY_RUNNING = 20
    STATE = 21
    KIT_INVALID = 24  # recovery kit: wrong identity, damaged, truncated, unknown format
    INTERRUPTED = 130


class DrBackupError(Exception):
    """An expected failure: a one-line cause plus what the user should do about it."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, hint: str = "", *, exit_code: ExitCode | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def one_line(self) -> str:
        """The message and hint folded into the single line the CLI prints."""
        text = " ".join(self.message.split())
        if self.hint:
            text = f"{text} ({' '.join(self.hint.split())})"
        return text


class ConfigError(DrBackupError):
    exit_code = ExitCode.CONFIG


class SourceMissingError(DrBackupError):
    exit_code = ExitCode.SOURCE_MISSING


class TargetRefusedError(DrBackupError):
    exit_code = ExitCode.TARGET_REFUSED


class NotFoundError(DrBackupError):
    exit_code = ExitCode.NOT_FOUND


class StateError(DrBackupError):
    exit_code = ExitCode.STATE


class AlreadyRunningError(DrBackupError):
    exit_code = ExitCode.ALREADY_RUNNING


class DumpFailedError(DrBackupError):
    exit_code = ExitCode.DUMP_FAILED


class VerifyFailedError(DrBackupError):
    exit_code = ExitCode.VERIFY_FAILED
