"""The error family every expected failure belongs to, and the exit codes the CLI maps them to.

Every expected failure is a `DrBackupError`: it carries a one-line message naming the cause, a
hint saying what to do, and the process exit code. The CLI prints `error: <message> (<hint>)`
and never a traceback for these.
"""

from __future__ import annotations

import re
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
    GUARD_FROZEN = 25  # retention frozen by a suspect snapshot (#16): nothing was removed
    MEDIA_INVALID = 26  # offline medium (#19): altered, unsigned, unknown key, replayed
    MEDIA_INCOMPLETE = 27  # offline medium (#19): an export to it did not finish
    REPLICATION_CUT = 28  # a copy stopped by its replica's time window (#18): resumes next run
    MAINTENANCE_REFUSED = 29  # forget/prune/check: another host owns the agency's maintenance
    FLEET_NOT_ALL_GOOD = 30  # fleet report (#20): an agency not meeting, unknown, unprotected
    DB_RESTORE_REFUSED = 31  # restore-db (#17): the target server lacks what the dump needs, or
    # a users-and-grants snapshot holds a statement drbackup does not replay
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


class UsageError(DrBackupError):
    """The command line asks for something impossible: options that exclude each other, a
    value that is not a date, an id that is not one (exit 2, like argparse's own errors)."""

    exit_code = ExitCode.USAGE


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


class GuardFrozenError(DrBackupError):
    exit_code = ExitCode.GUARD_FROZEN


class MaintenanceRefusedError(DrBackupError):
    """Forget, prune or check refused: another host owns the agency's maintenance (its config,
    or the repository's maintenance claims, say so). Nothing ran in the repository."""

    exit_code = ExitCode.MAINTENANCE_REFUSED


class DbRestoreRefusedError(DrBackupError):
    """restore-db refused before anything changed: the target server lacks what the dump
    needs (e.g. the roles owning its objects). Nothing was created or restored."""

    exit_code = ExitCode.DB_RESTORE_REFUSED


# One table of S3 errors for both doors to S3 (#15 item 5): restic's stderr (engine/classify.py)
# and boto3's ClientError (store/s3.py) map the same error to the same exit code. boto3 gives
# the code; restic prints minio-go's message, so the messages are listed with their codes.
S3_CREDENTIALS_REJECTED = frozenset({
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
    "InvalidClientTokenId", "AuthorizationHeaderMalformed"})
S3_ACCESS_DENIED = frozenset({"AccessDenied", "Forbidden", "AllAccessDisabled", "403"})
S3_BUCKET_MISSING = frozenset({"NoSuchBucket", "404", "NotFound"})
S3_MESSAGES: tuple[tuple[str, str], ...] = (
    ("access key id you provided does not exist", "InvalidAccessKeyId"),
    ("request signature we calculated does not match", "SignatureDoesNotMatch"),
    ("provided token has expired", "ExpiredToken"),
    ("access denied", "AccessDenied"),
)
_S3_WORDS = re.compile(r"(?<![A-Za-z])(" + "|".join(sorted(
    S3_CREDENTIALS_REJECTED | (S3_ACCESS_DENIED - {"403"}), key=len, reverse=True))
    + r")(?![A-Za-z])")


def s3_exit_code(code: str) -> ExitCode | None:
    """The exit code an S3 error code (or HTTP status) means; None when it is not one of the
    table's (a missing bucket is STORE_ACCESS, like a denial)."""
    if code in S3_CREDENTIALS_REJECTED:
        return ExitCode.STORE_CREDENTIALS
    if code in S3_ACCESS_DENIED or code in S3_BUCKET_MISSING:
        return ExitCode.STORE_ACCESS
    return None


def s3_code_in(text: str) -> str | None:
    """The S3 error code a tool's output names, by its code or by its message; None if none."""
    found = _S3_WORDS.search(text)
    if found:
        return found.group(1)
    lowered = text.lower()
    return next((code for message, code in S3_MESSAGES if message in lowered), None)

