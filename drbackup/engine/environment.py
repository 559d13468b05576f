"""The environment of a restic process that opens two repositories (copy, init
--copy-chunker-params): the source named by RESTIC_FROM_* variables, and the one set of backend
credentials both repositories must accept; and the settings file for plain restic that an
opened recovery kit carries (`restic_env_file`)."""

from __future__ import annotations

from pathlib import Path

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


def _shell(value: str) -> str:
    """A single-quoted shell word."""
    return "'" + value.replace("'", "'\\''") + "'"


def restic_env_file(title: str, repository: str, password_file: Path, cache_dir: Path, *,
                    credentials_file: Path | None = None, region: str | None = None) -> str:
    """What plain restic needs for one repository, as shell assignments to read with
    `set -a; . FILE; set +a`: file names and the URL only, no secret (the break-glass runbook,
    runbooks/en/restic-without-drbackup.md). An S3 store's keys come from its credentials file
    (`AWS_SHARED_CREDENTIALS_FILE`, profile [default])."""
    lines = [f"# {title}", f"RESTIC_REPOSITORY={_shell(repository)}"]
    if credentials_file is not None:
        lines.append(f"AWS_SHARED_CREDENTIALS_FILE={_shell(str(credentials_file))}")
    if region is not None:
        lines.append(f"AWS_DEFAULT_REGION={_shell(region)}")
    lines += [f"RESTIC_PASSWORD_FILE={_shell(str(password_file))}",
              f"RESTIC_CACHE_DIR={_shell(str(cache_dir))}"]
    return "\n".join(lines) + "\n"
