"""The only door to restic: typed calls that build argv, run restic and map its output and exit
codes to results or typed errors."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

from drbackup.config.units import format_duration
from drbackup.engine.errors import (
    BackendAccessDenied,
    BackendUnreachable,
    IncompatibleCredentials,
    RepositoryLocked,
    RepositoryMissing,
    ResticError,
    ResticInterrupted,
    ResticNotInstalled,
    ResticTimeout,
    ResticTooOld,
    WrongPassword,
)
from drbackup.engine.jsonlines import (
    JsonObject,
    as_int,
    as_object,
    as_objects,
    as_str_list,
    error_text,
)
from drbackup.engine.models import (
    BackupResult,
    BackupSummary,
    CheckResult,
    FindHit,
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
from drbackup.engine.runner import ProcessResult, child_environment, run_process

log = logging.getLogger(__name__)
MINIMUM_VERSION = (0, 17, 1)
_VERSION = re.compile(r"restic\s+v?(\d+)\.(\d+)\.(\d+)")
_UNREACHABLE = re.compile(
    r"connection refused|no such host|dial tcp|i/o timeout|network is unreachable|"
    r"connection reset|no route to host|TLS handshake timeout|server misbehaving",
    re.IGNORECASE,
)
_DENIED = re.compile(
    r"InvalidAccessKeyId|SignatureDoesNotMatch|Access Denied|AccessDenied|Forbidden|"
    r"The AWS Access Key Id you provided does not exist",
    re.IGNORECASE,
)
INSTALL_HINT = (
    "install restic >= 0.17.1: 'make setup' does it (Debian 12: the Debian 13 package), "
    "or set daemon.restic to its path"
)

ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class ResticSettings:
    binary: str = "restic"
    cache_dir: Path = Path("/var/cache/drbackup")
    timeout: timedelta = timedelta(hours=6)
    retry_lock: timedelta | None = None
    # Where to remember `restic version` per binary file (path, inode, size, mtime), so a
    # one-shot command does not start restic once more just to learn what it already knew.
    version_memo: Path | None = None


def redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[REDACTED]")
    return text


class Restic:
    """restic, driven through subprocess. Thread-safe: each call is its own process."""

    def __init__(self, settings: ResticSettings):
        self.settings = settings
        self._version: ResticVersion | None = None

    # -- plumbing ---------------------------------------------------------------------------

    def _env(self, target: RepoTarget | None) -> dict[str, str]:
        extra = {"RESTIC_CACHE_DIR": str(self.settings.cache_dir), "RESTIC_PROGRESS_FPS": "0.5"}
        if target is not None:
            extra["RESTIC_REPOSITORY"] = target.url
            extra["RESTIC_PASSWORD_FILE"] = str(target.password_file)
            extra.update(dict(target.backend_env))
        return child_environment(extra)

    def _run(
        self,
        target: RepoTarget | None,
        args: Sequence[str],
        *,
        json_output: bool = True,
        timeout: timedelta | None = None,
        on_message: Callable[[JsonObject], None] | None = None,
        stdout_sink: IO[bytes] | None = None,
        cwd: str | None = None,
        env_extra: dict[str, str] | None = None,
        lock_retry: bool = False,
    ) -> ProcessResult:
        argv = [self.settings.binary]
        if json_output:
            argv.append("--json")
        if target is not None and target.limit_upload_kib:
            argv += ["--limit-upload", str(target.limit_upload_kib)]
        argv += list(args)
        env = self._env(target)
        if env_extra:
            env.update(env_extra)
        # The configured timeout caps every run; a call may ask for less (quick commands).
        limit = min(timeout or self.settings.timeout, self.settings.timeout).total_seconds()
        try:
            result = run_process(argv, env, timeout=limit, on_message=on_message,
                                 stdout_sink=stdout_sink, cwd=cwd)
            if (lock_retry and target is not None and result.returncode == 11
                    and not result.timed_out and not result.terminated):
                # A crashed drbackup's orphaned restic dies on SIGPIPE and leaves its lock;
                # restic refuses to work next to it even when stale, and --retry-lock would
                # wait the whole lock_wait on it. So the first attempt fails fast, plain
                # `unlock` removes only stale locks (a live job's lock stays), and only the
                # retry waits, for live locks alone, up to lock_wait.
                removed = self._remove_stale_locks(target)
                wait = self.settings.retry_lock
                if removed is not None and (removed or wait is not None):
                    retry = argv if wait is None else [
                        argv[0], "--retry-lock", format_duration(wait), *argv[1:]]
                    result = run_process(retry, env, timeout=limit, on_message=on_message,
                                         stdout_sink=stdout_sink, cwd=cwd)
            return result
        except FileNotFoundError:
            raise ResticNotInstalled(
                f"restic binary {self.settings.binary!r} not found", INSTALL_HINT) from None
        except PermissionError:
            raise ResticNotInstalled(
                f"restic binary {self.settings.binary!r} is not executable", INSTALL_HINT
            ) from None

    def _remove_stale_locks(self, target: RepoTarget) -> int | None:
        """`restic unlock` (stale locks only; never --remove-all). How many locks it removed, or
        None when it failed (e.g. read-only credentials)."""
        result = run_process([self.settings.binary, "unlock"], self._env(target),
                             timeout=300.0)
        if result.returncode != 0:
            return None
        removed = 0
        for line in result.stdout.text:
            words = line.split()
            if line.startswith("successfully removed") and len(words) > 2 and words[2].isdigit():
                removed = int(words[2])
        if removed:
            log.warning("removed %d stale restic lock(s) on %s after a lock conflict", removed,
                        target.display)
        return removed

    def _raise_for(self, result: ProcessResult, target: RepoTarget | None, action: str,
                   ok_codes: tuple[int, ...] = (0,)) -> None:
        if result.returncode in ok_codes and not result.timed_out:
            return
        where = target.display if target else "restic"
        secrets = target.secrets() if target else []
        tail = redact(result.stderr_tail(), secrets)
        detail = self._error_detail(result, secrets)
        if result.timed_out:
            raise ResticTimeout(
                f"{action} on {where} did not finish within its time limit and was stopped",
                "raise the timeout in the config if the data really needs longer",
                stderr_tail=tail, returncode=result.returncode)
        code = result.returncode
        if result.terminated or code in (130, -2, -15, 143):
            raise ResticInterrupted(f"{action} on {where} was interrupted", "run it again",
                                    stderr_tail=tail, returncode=code)
        if code == 10:
            raise RepositoryMissing(
                f"repository {where} does not exist",
                "create it with 'drbackup repo init', or check the store url",
                stderr_tail=tail, returncode=code)
        if code == 11:
            raise RepositoryLocked(
                f"repository {where} is locked by another process",
                "wait for the other job; if none runs, 'drbackup unlock' removes stale locks",
                stderr_tail=tail, returncode=code)
        if code == 12:
            raise WrongPassword(
                f"wrong password for repository {where}",
                "check the agency's password_file; it must hold this repository's password",
                stderr_tail=tail, returncode=code)
        if _DENIED.search(tail):
            raise BackendAccessDenied(
                f"the store refused {action} on {where}: {detail}",
                "check the store's credentials_file and its permissions on the bucket",
                stderr_tail=tail, returncode=code)
        if _UNREACHABLE.search(tail):
            raise BackendUnreachable(
                f"the store for {where} is unreachable: {detail}",
                "check the network and the store url; jobs retry when it returns",
                stderr_tail=tail, returncode=code)
        hint = "see the log for restic's full output"
        if "no space left on device" in tail.lower():
            hint = ("out of disk space where restic writes (the restore target, its cache or a "
                    "local repository): free space there, or write elsewhere")
        raise ResticError(f"restic {action} failed on {where} (exit {code}): {detail}",
                          hint, stderr_tail=tail, returncode=code)

    @staticmethod
    def _error_detail(result: ProcessResult, secrets: Sequence[str]) -> str:
        """restic's last error; when that only counts the errors before it ("There were 91
        errors"), the first of them too, which is the one that says what went wrong."""
        items = [m for m in result.stderr.messages if m.get("message_type") == "error"]
        for message in reversed(result.stderr.messages):
            if message.get("message_type") in ("exit_error", "error"):
                last = redact(error_text(message), secrets)
                if items and message is not items[0] and message.get("message_type") == (
                        "exit_error"):
                    first = redact(error_text(items[0]), secrets)
                    count = " ".join(last.split()).removeprefix("Fatal: ").rstrip(".")
                    return f"{count}; the first: {first}"
                return last
        lines = [line.strip() for line in result.stderr.text if line.strip()]
        if lines:
            return redact(lines[-1].removeprefix("Fatal: "), secrets)
        return "no error text"

    # -- version ----------------------------------------------------------------------------

    def version(self) -> ResticVersion:
        """restic's version. Raises ResticNotInstalled when it cannot run or says no version."""
        if self._version is None:
            identity = self._binary_identity()
            text = self._remembered_version(identity)
            fresh = text is None
            if text is None:
                result = self._run(None, ["version"], json_output=False,
                                   timeout=timedelta(seconds=30))
                text = "".join(result.stdout.text) or result.stderr_tail()
                if result.returncode != 0:
                    text = ""
            match = _VERSION.search(text)
            if match is None:
                raise ResticNotInstalled(
                    f"{self.settings.binary!r} did not report a restic version", INSTALL_HINT)
            if fresh:
                self._remember_version(identity, text)
            self._version = ResticVersion(
                (int(match.group(1)), int(match.group(2)), int(match.group(3))), text.strip())
        return self._version

    def _binary_identity(self) -> str | None:
        """The binary file as a key that changes when the file is replaced or rewritten."""
        if self.settings.version_memo is None:
            return None
        found = shutil.which(self.settings.binary)
        if found is None:
            return None
        try:
            real = os.path.realpath(found)
            info = os.stat(real)
        except OSError:
            return None
        return f"{real}:{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}"

    def _remembered_version(self, identity: str | None) -> str | None:
        if identity is None or self.settings.version_memo is None:
            return None
        try:
            memo = json.loads(self.settings.version_memo.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if isinstance(memo, dict) and memo.get("binary") == identity:
            text = memo.get("version")
            return text if isinstance(text, str) else None
        return None

    def _remember_version(self, identity: str | None, text: str) -> None:
        memo_file = self.settings.version_memo
        if identity is None or memo_file is None:
            return
        try:
            scratch = memo_file.with_name(f".{memo_file.name}.{os.getpid()}")
            scratch.write_text(json.dumps({"binary": identity, "version": text.strip()}),
                               encoding="utf-8")
            os.replace(scratch, memo_file)
        except OSError:
            pass  # no memo costs one `restic version` per command, nothing else

    def require_supported(self) -> ResticVersion:
        """The version, or ResticTooOld when it is below 0.17.1."""
        found = self.version()
        if found.version < MINIMUM_VERSION:
            raise ResticTooOld(
                f"restic {found} found at {self.settings.binary!r}, but drbackup needs >= 0.17.1",
                INSTALL_HINT)
        return found

    # -- repository -------------------------------------------------------------------------

    def repository_exists(self, target: RepoTarget) -> bool:
        """True when the repository exists and the password opens it.

        Raises WrongPassword, BackendUnreachable, BackendAccessDenied as they apply.
        """
        result = self._run(target, ["cat", "config"], json_output=False,
                           timeout=timedelta(minutes=5))
        if result.returncode == 10:
            return False
        self._raise_for(result, target, "open")
        return True

    def init(self, target: RepoTarget, *, copy_chunker_params_from: RepoTarget | None = None
             ) -> None:
        args = ["init"]
        env_extra: dict[str, str] = {}
        if copy_chunker_params_from is not None:
            args += ["--copy-chunker-params"]
            env_extra = {**self._from_env(copy_chunker_params_from),
                         **shared_backend_env(copy_chunker_params_from, target)}
        result = self._run(target, args, env_extra=env_extra, timeout=timedelta(minutes=10))
        if result.returncode != 0 and "already contains keys" in result.stderr_tail():
            # restic init writes the key, then the config: an init killed in between leaves a
            # repository that every command calls missing (no config) and init refuses (keys).
            raise ResticError(
                f"repository {target.display} holds a key but no config: an earlier init was "
                "interrupted before it finished",
                "nothing else can have been stored there yet: delete the repository's keys/ "
                "folder in the store, then run the job again",
                stderr_tail=redact(result.stderr_tail(), target.secrets()),
                returncode=result.returncode)
        self._raise_for(result, target, "init")

    def repository_config(self, target: RepoTarget) -> dict[str, object]:
        """The repository's config file (id, version, chunker_polynomial) as restic reports it."""
        result = self._run(target, ["cat", "config"], timeout=timedelta(minutes=5))
        self._raise_for(result, target, "cat config")
        text = "\n".join(result.stdout.text)  # pretty-printed over several lines
        try:
            payload = json.loads(text[text.index("{"):])
        except ValueError:
            raise ResticError(f"restic cat config on {target.display} printed no JSON",
                              "see the log", stderr_tail=result.stderr_tail()) from None
        return dict(payload) if isinstance(payload, dict) else {}

    def _from_env(self, source: RepoTarget) -> dict[str, str]:
        """restic's RESTIC_FROM_* variables name the source repository of init/copy.
        Backend credentials are per-process: both sides must accept the same ones."""
        env = {
            "RESTIC_FROM_REPOSITORY": source.url,
            "RESTIC_FROM_PASSWORD_FILE": str(source.password_file),
        }
        return env

    # -- backup -----------------------------------------------------------------------------

    def backup(
        self,
        target: RepoTarget,
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
        timeout: timedelta | None = None,
        on_progress: ProgressCallback | None = None,
        cwd: str | None = None,
        command_env: dict[str, str] | None = None,
    ) -> BackupResult:
        """Back up paths (or a command's stdout). Exit 3 (unreadable files) is a partial result,
        not an error. With stdin_command, restic makes no snapshot when the command fails."""
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
            args += ["--stdin-filename", stdin_filename or "stdin", "--stdin-from-command", "--",
                     *stdin_command]
        else:
            args += ["--", *paths]

        def handle(message: JsonObject) -> None:
            if on_progress is not None and message.get("message_type") == "status":
                on_progress(Progress.from_json(message))

        result = self._run(target, args, on_message=handle, timeout=timeout, cwd=cwd,
                           env_extra=command_env, lock_retry=True)
        self._raise_for(result, target, "backup", ok_codes=(0, 3))
        summary_message = result.stdout.last_of_type("summary")
        if summary_message is None:
            raise ResticError(
                f"restic backup on {target.display} ended without a summary",
                "see the log; the snapshot may not have been written",
                stderr_tail=result.stderr_tail(), returncode=result.returncode)
        summary = BackupSummary.from_json(summary_message)
        if summary.snapshot_id is None and not skip_if_unchanged:
            # Only --skip-if-unchanged may legitimately end without a snapshot.
            raise ResticError(
                f"restic backup on {target.display} reported no snapshot id",
                "see the log; the snapshot may not have been written",
                stderr_tail=result.stderr_tail(), returncode=result.returncode)
        unreadable = [error_text(m) for m in result.stderr.of_type("error")]
        if result.returncode == 3 and not unreadable:
            unreadable = [line for line in result.stderr.text if line.strip()] or [
                "restic reported unreadable source data"]
        return BackupResult(summary, unreadable)

    # -- reading ----------------------------------------------------------------------------

    def snapshots(self, target: RepoTarget, *, tags: Sequence[str] = (),
                  host: str | None = None) -> list[Snapshot]:
        """Snapshots, oldest first. Tags given are ANDed (restic's "a,b" form)."""
        args = ["snapshots"]
        if tags:
            args += ["--tag", ",".join(tags)]
        if host:
            args += ["--host", host]
        result = self._run(target, args, timeout=timedelta(minutes=15), lock_retry=True)
        self._raise_for(result, target, "snapshots")
        payload = self._single_json(result, target, "snapshots")
        if not isinstance(payload, list):
            raise ResticError(f"restic snapshots on {target.display} returned no list")
        snapshots = [Snapshot.from_json(item) for item in payload if isinstance(item, dict)]
        return sorted(snapshots, key=lambda s: s.time)

    def _single_json(self, result: ProcessResult, target: RepoTarget, action: str) -> object:
        for line in result.stdout.text:
            stripped = line.strip()
            if stripped.startswith(("[", "{")):
                try:
                    return json.loads(stripped)
                except ValueError:
                    continue
        if result.stdout.messages:
            return result.stdout.messages[-1]
        raise ResticError(f"restic {action} on {target.display} printed no JSON",
                          "see the log", stderr_tail=result.stderr_tail())

    def ls(self, target: RepoTarget, snapshot_id: str, paths: Sequence[str] = ()
           ) -> list[LsNode]:
        result = self._run(target, ["ls", snapshot_id, *paths], timeout=timedelta(minutes=30),
                           lock_retry=True)
        self._raise_for(result, target, "ls")
        return [LsNode.from_json(m) for m in result.stdout.messages
                if m.get("message_type", m.get("struct_type")) == "node"]

    def find(self, target: RepoTarget, patterns: Sequence[str], *, tags: Sequence[str] = (),
             snapshot_ids: Sequence[str] = (), ignore_case: bool = False,
             timeout: timedelta | None = None) -> list[FindHit]:
        """Paths matching any of the glob patterns, in every snapshot (or those named) that has
        all `tags`. One hit per (snapshot, path); snapshots in restic's order."""
        args = ["find"]
        if tags:
            args += ["--tag", ",".join(tags)]
        for snapshot_id in snapshot_ids:
            args += ["--snapshot", snapshot_id]
        if ignore_case:
            args.append("--ignore-case")
        args += ["--", *patterns]
        result = self._run(target, args, timeout=timeout or timedelta(hours=1), lock_retry=True)
        self._raise_for(result, target, "find")
        hits: list[FindHit] = []
        for line in result.stdout.text:
            stripped = line.strip()
            if not stripped.startswith("["):
                continue
            try:
                payload = json.loads(stripped)
            except ValueError:
                continue
            for group in payload if isinstance(payload, list) else []:
                if not isinstance(group, dict):
                    continue
                snapshot = str(group.get("snapshot", ""))
                hits += [FindHit.from_json(snapshot, match) for match in group.get("matches") or []
                         if isinstance(match, dict)]
        for message in result.stdout.messages:
            if "matches" in message:
                snapshot = str(message.get("snapshot", ""))
                hits += [FindHit.from_json(snapshot, m) for m in message.get("matches") or []
                         if isinstance(m, dict)]
        return hits

    def stats(self, target: RepoTarget, *, mode: str = "restore-size",
              snapshot_ids: Sequence[str] = ()) -> RepoStats:
        result = self._run(target, ["stats", "--mode", mode, *snapshot_ids],
                           timeout=timedelta(hours=1), lock_retry=True)
        self._raise_for(result, target, "stats")
        payload = self._single_json(result, target, "stats")
        data = payload if isinstance(payload, dict) else {}
        return RepoStats(
            total_size=as_int(data.get("total_size")),
            total_file_count=as_int(data.get("total_file_count")),
            snapshots_count=as_int(data.get("snapshots_count")),
            total_uncompressed_size=as_int(data.get("total_uncompressed_size")),
        )

    def dump(self, target: RepoTarget, snapshot_id: str, path: str, sink: IO[bytes], *,
             timeout: timedelta | None = None) -> None:
        """Write one file of a snapshot to sink (e.g. a database dump to pg_restore's stdin)."""
        result = self._run(target, ["dump", snapshot_id, path], json_output=False,
                           stdout_sink=sink, timeout=timeout, lock_retry=True)
        self._raise_for(result, target, "dump")

    # -- restore ----------------------------------------------------------------------------

    def restore(
        self,
        target: RepoTarget,
        snapshot_id: str,
        target_dir: Path,
        *,
        includes: Sequence[str] = (),
        excludes: Sequence[str] = (),
        dry_run: bool = False,
        verify: bool = False,
        overwrite: str | None = None,
        timeout: timedelta | None = None,
        on_progress: ProgressCallback | None = None,
        limit_download_kib: int | None = None,
        tolerate_errors: bool = False,
    ) -> RestoreSummary:
        """Restore a snapshot under target_dir. With tolerate_errors, a restore that ran to the
        end but could not restore some data (restic exit 1 with per-file errors, e.g. a damaged
        pack) returns its summary with the errors instead of raising: a drill wants to know
        which files suffered. `limit_download_kib` caps the read rate from the repository
        (restic --limit-download, KiB/s), e.g. to spare a shared WAN link."""
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

        def handle(message: JsonObject) -> None:
            if on_progress is not None and message.get("message_type") == "status":
                on_progress(Progress.from_json(message))

        result = self._run(target, args, on_message=handle, timeout=timeout, lock_retry=True)
        errors = [error_text(m) for m in result.stderr.of_type("error")]
        if not (tolerate_errors and errors and result.returncode == 1
                and not result.timed_out and not result.terminated):
            self._raise_for(result, target, "restore")
        summary = result.stdout.last_of_type("summary") or {}
        if dry_run:
            planned = [m for m in result.stdout.of_type("verbose_status")]
            summary = {**summary,
                       "files_restored": summary.get("files_restored", len(planned))}
        return RestoreSummary.from_json(summary, errors)

    # -- maintenance ------------------------------------------------------------------------

    def check(self, target: RepoTarget, *, read_data: bool = False,
              read_data_subset: str | None = None, timeout: timedelta | None = None
              ) -> CheckResult:
        """Structural check, optionally reading pack data. Errors in the repository give a
        CheckResult with ok=False; failures to run check at all raise."""
        args = ["check"]
        if read_data:
            args.append("--read-data")
        elif read_data_subset:
            args.append(f"--read-data-subset={read_data_subset}")
        result = self._run(target, args, timeout=timeout, lock_retry=True)
        summary = result.stdout.last_of_type("summary")
        if summary is None or result.timed_out or result.terminated or (
                result.returncode in (10, 11, 12)):
            # No verdict about the data: restic could not do the check (locked, offline...).
            self._raise_for(result, target, "check")
            summary = {}
        ok = result.returncode == 0 and as_int(summary.get("num_errors")) == 0
        errors = [error_text(m).strip() for m in result.stderr.of_type("error")]
        errors = [e for e in errors if e]
        broken = summary.get("broken_packs")
        return CheckResult(
            ok=ok,
            errors=errors if not ok else [],
            num_errors=as_int(summary.get("num_errors")) or (0 if ok else max(1, len(errors))),
            broken_packs=[str(p) for p in broken] if isinstance(broken, list) else [],
            suggest_repair_index=bool(summary.get("suggest_repair_index")),
            suggest_prune=bool(summary.get("suggest_prune")),
        )

    def forget(self, target: RepoTarget, policy: ForgetPolicy, *, tags: Sequence[str] = (),
               group_by: str = "host,tags", dry_run: bool = False,
               snapshot_ids: Sequence[str] = ()) -> list[ForgetGroup]:
        args = ["forget", "--group-by", group_by]
        if dry_run:
            args.append("--dry-run")
        if tags:
            args += ["--tag", ",".join(tags)]
        if policy.keep_within is not None:
            args += ["--keep-within", _restic_duration(policy.keep_within)]
        for flag, value in (("--keep-last", policy.keep_last),
                            ("--keep-hourly", policy.keep_hourly),
                            ("--keep-daily", policy.keep_daily),
                            ("--keep-weekly", policy.keep_weekly),
                            ("--keep-monthly", policy.keep_monthly),
                            ("--keep-yearly", policy.keep_yearly)):
            if value is not None:
                args += [flag, str(value)]
        args += list(snapshot_ids)
        result = self._run(target, args, lock_retry=True)
        self._raise_for(result, target, "forget")
        if snapshot_ids:
            return []
        payload = self._single_json(result, target, "forget")
        groups: list[ForgetGroup] = []
        for item in payload if isinstance(payload, list) else []:
            if not isinstance(item, dict):
                continue
            reasons: dict[str, list[str]] = {}
            for reason in as_objects(item.get("reasons")):
                snap = as_object(reason.get("snapshot"))
                reasons[str(snap.get("id", ""))] = as_str_list(reason.get("matches"))
            groups.append(ForgetGroup(
                tags=as_str_list(item.get("tags")),
                host=str(item.get("host", "")),
                paths=as_str_list(item.get("paths")),
                keep=[Snapshot.from_json(s) for s in as_objects(item.get("keep"))],
                remove=[Snapshot.from_json(s) for s in as_objects(item.get("remove"))],
                reasons=reasons,
            ))
        return groups

    def prune(self, target: RepoTarget, *, timeout: timedelta | None = None) -> None:
        result = self._run(target, ["prune"], json_output=False, timeout=timeout, lock_retry=True)
        self._raise_for(result, target, "prune")

    def copy(self, source: RepoTarget, destination: RepoTarget,
             snapshot_ids: Sequence[str] = (), *, timeout: timedelta | None = None) -> None:
        """Copy snapshots (all when none named) from source to destination. restic copy has no
        JSON output: callers confirm the result with snapshots() on the destination."""
        env_extra = {**self._from_env(source), **shared_backend_env(source, destination)}
        result = self._run(destination, ["copy", *snapshot_ids], json_output=False,
                           env_extra=env_extra, timeout=timeout, lock_retry=True)
        self._raise_for(result, destination, "copy")

    def unlock(self, target: RepoTarget) -> None:
        """Remove stale locks only (never --remove-all: that would break a running job)."""
        result = self._run(target, ["unlock"], json_output=False, timeout=timedelta(minutes=5))
        self._raise_for(result, target, "unlock")


_CREDENTIAL_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


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


def _restic_duration(value: timedelta) -> str:
    """restic's --keep-within wants e.g. 1y2m3d4h; days and hours are exact enough here."""
    hours = int(value.total_seconds() // 3600)
    days, hours = divmod(hours, 24)
    text = (f"{days}d" if days else "") + (f"{hours}h" if hours else "")
    return text or "1h"
