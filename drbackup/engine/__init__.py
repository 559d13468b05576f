"""The only door to restic. Everything else calls restic through `Restic`."""

from drbackup.engine.errors import (
    BackendAccessDenied,
    BackendUnreachable,
    RepositoryLocked,
    RepositoryMissing,
    ResticError,
    ResticInterrupted,
    ResticNotInstalled,
    ResticTimeout,
    ResticTooOld,
    WrongPassword,
)
from drbackup.engine.models import (
    BackupResult,
    BackupSummary,
    CheckResult,
    ForgetGroup,
    ForgetPolicy,
    LsNode,
    Progress,
    RepoStats,
    RepoTarget,
    ResticVersion,
    RestoreSummary,
    Snapshot,
)
from drbackup.engine.restic import MINIMUM_VERSION, Restic, ResticSettings
from drbackup.engine.runner import RUNNING

__all__ = [
    "MINIMUM_VERSION",
    "RUNNING",
    "BackendAccessDenied",
    "BackendUnreachable",
    "BackupResult",
    "BackupSummary",
    "CheckResult",
    "ForgetGroup",
    "ForgetPolicy",
    "LsNode",
    "Progress",
    "RepoStats",
    "RepoTarget",
    "RepositoryLocked",
    "RepositoryMissing",
    "Restic",
    "ResticError",
    "ResticInterrupted",
    "ResticNotInstalled",
    "ResticSettings",
    "ResticTimeout",
    "ResticTooOld",
    "ResticVersion",
    "RestoreSummary",
    "Snapshot",
    "WrongPassword",
]
