"""restic's failures as types, each with the hint an operator needs."""

from __future__ import annotations

from drbackup.errors import DrBackupError, ExitCode


class ResticError(DrBackupError):
    """restic failed; `stderr_tail` keeps its last lines for the run record."""

    exit_code = ExitCode.RESTIC_FAILED

    def __init__(self, message: str, hint: str = "", *, stderr_tail: str = "",
                 returncode: int | None = None):
        super().__init__(message, hint)
        self.stderr_tail = stderr_tail
        self.returncode = returncode


class ResticNotInstalled(ResticError):
    exit_code = ExitCode.RESTIC_MISSING


class ResticTooOld(ResticError):
    exit_code = ExitCode.RESTIC_TOO_OLD


class RepositoryMissing(ResticError):
    exit_code = ExitCode.REPO_MISSING


class RepositoryLocked(ResticError):
    exit_code = ExitCode.REPO_LOCKED


class WrongPassword(ResticError):
    exit_code = ExitCode.WRONG_PASSWORD


class ResticInterrupted(ResticError):
    exit_code = ExitCode.INTERRUPTED


class ResticTimeout(ResticError):
    exit_code = ExitCode.TIMEOUT


class BackendUnreachable(ResticError):
    """restic could not reach the storage backend (network down, DNS, refused)."""

    exit_code = ExitCode.STORE_UNREACHABLE


class BackendAccessDenied(ResticError):
    """The backend denied restic's request (the credentials lack the permission)."""

    exit_code = ExitCode.STORE_ACCESS


class BackendCredentialsRejected(ResticError):
    """The backend rejected restic's credentials (unknown key, wrong secret, expired token)."""

    exit_code = ExitCode.STORE_CREDENTIALS


class IncompatibleCredentials(ResticError):
    """Two repositories one restic process must open need different S3 keys."""

    exit_code = ExitCode.CONFIG


class CopyCut(ResticError):
    """restic copy stopped at the time limit it was given (a replica's time window): the
    snapshots copied so far stay; the next run copies the rest."""

    exit_code = ExitCode.REPLICATION_CUT
