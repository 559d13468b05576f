"""restic's command lines as pure functions: one builder per verb, typed inputs in, the argv words
out. No I/O, no environment, no secrets: the repository, its password file and the backend
credentials reach restic through the child's environment only (see `Restic._env`), so nothing
here is ever given a secret to leak into `ps` or a log line.

Each builder returns the words after restic's global options; `command` puts the binary and the
global options (`--json`, `--limit-upload`) in front, `with_retry_lock` adds `--retry-lock` for
the second attempt after a lock conflict. tests/unit/engine/test_argv.py pins every verb's argv.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from drbackup.config.units import format_duration
from drbackup.engine.models import ForgetPolicy

Argv = tuple[str, ...]


def command(binary: str, args: Sequence[str], *, json_output: bool = True,
            limit_upload_kib: int | None = None, limit_download_kib: int | None = None,
            cacerts: Sequence[Path] = (), options: Sequence[str] = ()) -> list[str]:
    """The whole command line: binary, global options, then the verb's words. A CA file is a
    path, never a secret; restic adds each --cacert to the roots it trusts."""
    argv = [binary]
    if json_output:
        argv.append("--json")
    if limit_upload_kib:
        argv += ["--limit-upload", str(limit_upload_kib)]
    if limit_download_kib and "--limit-download" not in args:
        argv += ["--limit-download", str(limit_download_kib)]
    for cacert in dict.fromkeys(cacerts):
        argv += ["--cacert", str(cacert)]
    return argv + list(options) + list(args)


def with_retry_lock(argv: Sequence[str], wait: timedelta) -> list[str]:
    """The same command, waiting up to `wait` for live locks (a global option: after the binary)."""
    return [argv[0], "--retry-lock", format_duration(wait), *argv[1:]]


def version_args() -> Argv:
    return ("version",)


def cat_config_args() -> Argv:
    return ("cat", "config")


def init_args(*, copy_chunker_params: bool = False) -> Argv:
    """`init`; with copy_chunker_params the source repository is named in RESTIC_FROM_*."""
    return ("init", "--copy-chunker-params") if copy_chunker_params else ("init",)


def unlock_args() -> Argv:
    """Stale locks only: never --remove-all, which would break a running job."""
    return ("unlock",)


def backup_args(
    paths: Sequence[str],
    *,
    tags: Sequence[str] = (),
    host: str | None = None,
    excludes: Sequence[str] = (),
    one_file_system: bool = False,
    stdin_command: Sequence[str] | None = None,
    stdin_filename: str | None = None,
    time: datetime | None = None,
    skip_if_unchanged: bool = False,
) -> Argv:
    """`backup` of paths, or of a command's stdout (`--stdin-from-command`, which replaces the
    paths). Each tag is its own --tag, as given (restic splits a --tag value on commas)."""
    args = ["backup"]
    for tag in tags:
        args += ["--tag", tag]
    if host:
        args += ["--host", host]
    for pattern in excludes:
        args += ["--exclude", pattern]
    if one_file_system:
        args.append("--one-file-system")
    if time is not None:
        args += ["--time", time.strftime("%Y-%m-%d %H:%M:%S")]
    if skip_if_unchanged:
        args.append("--skip-if-unchanged")
    if stdin_command is not None:
        # After "--" every word is the command's, even one that starts with a dash.
        args += ["--stdin-filename", stdin_filename or "stdin", "--stdin-from-command", "--",
                 *stdin_command]
    else:
        args += ["--", *paths]
    return tuple(args)


def snapshots_args(*, tags: Sequence[str] = (), host: str | None = None) -> Argv:
    """`snapshots`; tags given are ANDed (restic's "a,b" form)."""
    args = ["snapshots"]
    if tags:
        args += ["--tag", ",".join(tags)]
    if host:
        args += ["--host", host]
    return tuple(args)


def ls_args(snapshot_id: str, paths: Sequence[str] = ()) -> Argv:
    return ("ls", snapshot_id, *paths)


def find_args(patterns: Sequence[str], *, tags: Sequence[str] = (),
              snapshot_ids: Sequence[str] = (), ignore_case: bool = False) -> Argv:
    """`find` of glob patterns (after "--", so a pattern may start with a dash)."""
    args = ["find"]
    if tags:
        args += ["--tag", ",".join(tags)]
    for snapshot_id in snapshot_ids:
        args += ["--snapshot", snapshot_id]
    if ignore_case:
        args.append("--ignore-case")
    args += ["--", *patterns]
    return tuple(args)


def stats_args(*, mode: str = "restore-size", snapshot_ids: Sequence[str] = ()) -> Argv:
    return ("stats", "--mode", mode, *snapshot_ids)


def dump_args(snapshot_id: str, path: str) -> Argv:
    return ("dump", snapshot_id, path)


def restore_args(
    snapshot_id: str,
    target_dir: Path,
    *,
    includes: Sequence[str] = (),
    excludes: Sequence[str] = (),
    dry_run: bool = False,
    verify: bool = False,
    overwrite: str | None = None,
    limit_download_kib: int | None = None,
) -> Argv:
    """`restore` under target_dir. --limit-download is a global option: before the verb."""
    args: list[str] = []
    if limit_download_kib:
        args += ["--limit-download", str(int(limit_download_kib))]
    args += ["restore", snapshot_id, "--target", str(target_dir)]
    for pattern in includes:
        args += ["--include", pattern]
    for pattern in excludes:
        args += ["--exclude", pattern]
    if dry_run:
        args += ["--dry-run", "-v"]
    if verify:
        args.append("--verify")
    if overwrite:
        args += ["--overwrite", overwrite]
    return tuple(args)


def check_args(*, read_data: bool = False, read_data_subset: str | None = None) -> Argv:
    """`check`; --read-data wins over a subset ("1/10", "5%", "2G")."""
    if read_data:
        return ("check", "--read-data")
    if read_data_subset:
        return ("check", f"--read-data-subset={read_data_subset}")
    return ("check",)


def forget_args(policy: ForgetPolicy, *, tags: Sequence[str] = (),
                group_by: str = "host,tags", dry_run: bool = False,
                snapshot_ids: Sequence[str] = ()) -> Argv:
    """`forget` by policy (every --keep-* set in it), or of the snapshots named. Never --prune:
    prune is its own verb, run on its own schedule."""
    args = ["forget", "--group-by", group_by]
    if dry_run:
        args.append("--dry-run")
    if tags:
        args += ["--tag", ",".join(tags)]
    if policy.keep_within is not None:
        args += ["--keep-within", restic_duration(policy.keep_within)]
    for flag, value in (("--keep-last", policy.keep_last),
                        ("--keep-hourly", policy.keep_hourly),
                        ("--keep-daily", policy.keep_daily),
                        ("--keep-weekly", policy.keep_weekly),
                        ("--keep-monthly", policy.keep_monthly),
                        ("--keep-yearly", policy.keep_yearly)):
        if value is not None:
            args += [flag, str(value)]
    args += list(snapshot_ids)
    return tuple(args)


def prune_args() -> Argv:
    return ("prune",)


def copy_args(snapshot_ids: Sequence[str] = ()) -> Argv:
    """`copy` of the snapshots named (all when none). The source repository and its password
    file go in RESTIC_FROM_REPOSITORY / RESTIC_FROM_PASSWORD_FILE, not in --from-repo."""
    return ("copy", *snapshot_ids)


def restic_duration(value: timedelta) -> str:
    """restic's --keep-within wants e.g. 1y2m3d4h; days and hours are exact enough here."""
    hours = int(value.total_seconds() // 3600)
    days, hours = divmod(hours, 24)
    text = (f"{days}d" if days else "") + (f"{hours}h" if hours else "")
    return text or "1h"
