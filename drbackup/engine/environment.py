"""The environment of a restic process that opens two repositories (copy, init
--copy-chunker-params): the source named by RESTIC_FROM_* variables (its credentials: see
engine/crossrepo.py); and the settings file for plain restic that an
opened recovery kit carries (`restic_env_file`)."""

from __future__ import annotations

from pathlib import Path

from drbackup.engine.models import RepoTarget


def from_env(source: RepoTarget) -> dict[str, str]:
    """restic's RESTIC_FROM_* variables name the source repository of init/copy."""
    return {
        "RESTIC_FROM_REPOSITORY": source.url,
        "RESTIC_FROM_PASSWORD_FILE": str(source.password_file),
    }


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
