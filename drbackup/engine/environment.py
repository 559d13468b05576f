"""The environment of a restic process that opens two repositories (copy, init
--copy-chunker-params): the source named by RESTIC_FROM_* variables, and the one set of backend
credentials both repositories must accept."""

from __future__ import annotations

from drbackup.engine.errors import IncompatibleCredentials
from drbackup.engine.models import RepoTarget

_CREDENTIAL_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def from_env(source: RepoTarget) -> dict[str, str]:
    """restic's RESTIC_FROM_* variables name the source repository of init/copy.
    Backend credentials are per-process: both sides must accept the same ones."""
    return {
        "RESTIC_FROM_REPOSITORY": source.url,
        "RESTIC_FROM_PASSWORD_FILE": str(source.password_file),
    }


def shared_backend_env(source: RepoTarget, destination: RepoTarget) -> dict[str, str]:
    """The backend environment for one restic process that opens both repositories (copy,
    init --copy-chunker-params).

    restic reads S3 credentials (AWS_*) once per process and applies them to BOTH repositories:
    there is no per-repository key (its S3 backend calls ApplyEnvironment("") for the source as
    for the destination). So two S3 repositories can only be paired when the same key opens
    both. Raises IncompatibleCredentials otherwise; a local repository on either side needs none.
    """
    src = dict(source.backend_env)
    dst = dict(destination.backend_env)
    src_keys = {k: src[k] for k in _CREDENTIAL_KEYS if k in src}
    dst_keys = {k: dst[k] for k in _CREDENTIAL_KEYS if k in dst}
    if src_keys and dst_keys and src_keys != dst_keys:
        raise IncompatibleCredentials(
            f"cannot copy from {source.display} to {destination.display}: restic uses one set of "
            "S3 credentials for both repositories, and these stores have different keys",
            "give both stores one key allowed on both buckets, or make the primary a local "
            "store (see docs/offsite.md, 'Replication credentials')")
    if src_keys and not dst_keys:
        # Only the source is on S3: the process environment is the source's.
        return src
    return {}
