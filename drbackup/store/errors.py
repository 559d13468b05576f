"""Failures talking to an S3-compatible store, each with the hint an operator needs."""

from __future__ import annotations

from drbackup.errors import DrBackupError, ExitCode


class StoreError(DrBackupError):
    exit_code = ExitCode.STORE_UNREACHABLE


class StoreUnreachable(StoreError):
    exit_code = ExitCode.STORE_UNREACHABLE


class StoreCredentialsRejected(StoreError):
    exit_code = ExitCode.STORE_CREDENTIALS


class StoreAccessDenied(StoreError):
    exit_code = ExitCode.STORE_ACCESS


class BucketMissing(StoreError):
    exit_code = ExitCode.STORE_ACCESS


class StoreFeatureMissing(StoreError):
    """The server lacks a feature we asked for (Object Lock, versioning...)."""

    exit_code = ExitCode.STORE_ACCESS


class ObjectMissing(StoreError):
    """An object listed a moment ago is gone (deleted in between: a prune on another host)."""

    exit_code = ExitCode.STORE_ACCESS
