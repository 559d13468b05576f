"""The only door to restic: typed calls that run restic with the argv built in engine/argv.py
and map its output and exit codes (engine/classify.py) to results or typed errors."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import drbackup.engine.argv as argv
from drbackup.engine.classify import half_initialised, raise_for, redact
from drbackup.engine.crossrepo import copy_access
from drbackup.engine.errors import CopyCut, ResticError, ResticNotInstalled, ResticTooOld
from drbackup.engine.invoke import Invoker, ResticSettings
from drbackup.engine.jsonlines import (
    JsonObject,
    as_int,
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
from drbackup.engine.output import find_hits, forget_groups, removed_locks, single_json
from drbackup.engine.runner import ProcessResult
from drbackup.engine.version import (
    INSTALL_HINT,
    MINIMUM_VERSION,
    binary_identity,
    parse_version,
    remember_version,
    remembered_version,
)

# Names other modules and tests import from here.
__all__ = ["MINIMUM_VERSION", "ProgressCallback", "Restic", "ResticSettings", "redact"]

log = logging.getLogger(__name__)

ProgressCallback = Callable[[Progress], None]


def local_repository_present(target: RepoTarget) -> bool:
    """True when `target` is a local repository holding restic's config file: read from
    restic's layout without running restic (a cheap "already initialised" for callers that
    would otherwise init). False for remote repositories, where only restic can tell."""
    location = target.url.removeprefix("local:")
    return location.startswith("/") and (Path(location) / "config").is_file()


class Restic:
    """restic, driven through subprocess. Thread-safe: each call is its own process."""

    def __init__(self, settings: ResticSettings):
        self.settings = settings
        self._invoker = Invoker(settings)
        self._version: ResticVersion | None = None

    def _run(self, target: RepoTarget | None, args: Sequence[str], **options: Any
             ) -> ProcessResult:
        return self._invoker.run(target, args, **options)

    # -- version ----------------------------------------------------------------------------

    def version(self) -> ResticVersion:
        """restic's version. Raises ResticNotInstalled when it cannot run or says no version."""
        if self._version is None:
            memo = self.settings.version_memo
            identity = binary_identity(self.settings.binary, memo)
            text = remembered_version(memo, identity)
            fresh = text is None
            if text is None:
                result = self._run(None, argv.version_args(), json_output=False,
                                   timeout=timedelta(seconds=30))
                text = "".join(result.stdout.text) or result.stderr_tail()
                if result.returncode != 0:
                    text = ""
            found = parse_version(text)
            if found is None:
                raise ResticNotInstalled(
                    f"{self.settings.binary!r} did not report a restic version", INSTALL_HINT)
            if fresh:
                remember_version(memo, identity, text)
            self._version = found
        return self._version

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
        result = self._run(target, argv.cat_config_args(), json_output=False,
                           timeout=timedelta(minutes=5))
        if result.returncode == 10:
            return False
        raise_for(result, target, "open")
        return True

    def init(self, target: RepoTarget, *, copy_chunker_params_from: RepoTarget | None = None
             ) -> None:
        args = argv.init_args(copy_chunker_params=copy_chunker_params_from is not None)
        if copy_chunker_params_from is None:
            result = self._run(target, args, timeout=timedelta(minutes=10))
        else:
            with copy_access(copy_chunker_params_from, target) as access:
                result = self._run(target, args, env_extra=access.env,
                                   pass_fds=access.pass_fds, cacerts=access.cacerts,
                                   options=access.options, timeout=timedelta(minutes=10))
        error = half_initialised(result, target)
        if error is not None:
            raise error
        raise_for(result, target, "init")

    def repository_config(self, target: RepoTarget) -> dict[str, object]:
        """The repository's config file (id, version, chunker_polynomial) as restic reports it."""
        result = self._run(target, argv.cat_config_args(), timeout=timedelta(minutes=5))
        raise_for(result, target, "cat config")
        text = "\n".join(result.stdout.text)  # pretty-printed over several lines
        try:
            payload = json.loads(text[text.index("{"):])
        except ValueError:
            raise ResticError(f"restic cat config on {target.display} printed no JSON",
                              "see the log", stderr_tail=result.stderr_tail()) from None
        return dict(payload) if isinstance(payload, dict) else {}

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
        args = argv.backup_args(
            paths, tags=tags, host=host, excludes=excludes, one_file_system=one_file_system,
            stdin_command=stdin_command, stdin_filename=stdin_filename, time=time,
            skip_if_unchanged=skip_if_unchanged)

        def handle(message: JsonObject) -> None:
            if on_progress is not None and message.get("message_type") == "status":
                on_progress(Progress.from_json(message))

        result = self._run(target, args, on_message=handle, timeout=timeout, cwd=cwd,
                           env_extra=command_env, lock_retry=True)
        raise_for(result, target, "backup", ok_codes=(0, 3))
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
        args = argv.snapshots_args(tags=tags, host=host)
        result = self._run(target, args, timeout=timedelta(minutes=15), lock_retry=True)
        raise_for(result, target, "snapshots")
        payload = single_json(result, target, "snapshots")
        if not isinstance(payload, list):
            raise ResticError(f"restic snapshots on {target.display} returned no list")
        snapshots = [Snapshot.from_json(item) for item in payload if isinstance(item, dict)]
        return sorted(snapshots, key=lambda s: s.time)

    def ls(self, target: RepoTarget, snapshot_id: str, paths: Sequence[str] = ()
           ) -> list[LsNode]:
        result = self._run(target, argv.ls_args(snapshot_id, paths), timeout=timedelta(minutes=30),
                           lock_retry=True)
        raise_for(result, target, "ls")
        return [LsNode.from_json(m) for m in result.stdout.messages
                if m.get("message_type", m.get("struct_type")) == "node"]

    def find(self, target: RepoTarget, patterns: Sequence[str], *, tags: Sequence[str] = (),
             snapshot_ids: Sequence[str] = (), ignore_case: bool = False,
             timeout: timedelta | None = None) -> list[FindHit]:
        """Paths matching any of the glob patterns, in every snapshot (or those named) that has
        all `tags`. One hit per (snapshot, path); snapshots in restic's order."""
        args = argv.find_args(patterns, tags=tags, snapshot_ids=snapshot_ids,
                              ignore_case=ignore_case)
        result = self._run(target, args, timeout=timeout or timedelta(hours=1), lock_retry=True)
        raise_for(result, target, "find")
        return find_hits(result)

    def stats(self, target: RepoTarget, *, mode: str = "restore-size",
              snapshot_ids: Sequence[str] = ()) -> RepoStats:
        result = self._run(target, argv.stats_args(mode=mode, snapshot_ids=snapshot_ids),
                           timeout=timedelta(hours=1), lock_retry=True)
        raise_for(result, target, "stats")
        payload = single_json(result, target, "stats")
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
        result = self._run(target, argv.dump_args(snapshot_id, path), json_output=False,
                           stdout_sink=sink, timeout=timeout, lock_retry=True)
        raise_for(result, target, "dump")

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
        args = argv.restore_args(
            snapshot_id, target_dir, includes=includes, excludes=excludes, dry_run=dry_run,
            verify=verify, overwrite=overwrite, limit_download_kib=limit_download_kib)

        def handle(message: JsonObject) -> None:
            if on_progress is not None and message.get("message_type") == "status":
                on_progress(Progress.from_json(message))

        result = self._run(target, args, on_message=handle, timeout=timeout, lock_retry=True)
        errors = [error_text(m) for m in result.stderr.of_type("error")]
        if not (tolerate_errors and errors and result.returncode == 1
                and not result.timed_out and not result.terminated):
            raise_for(result, target, "restore")
        # A dry run's summary counts what it would restore (restic >= 0.17).
        summary = result.stdout.last_of_type("summary") or {}
        return RestoreSummary.from_json(summary, errors)

    # -- maintenance ------------------------------------------------------------------------

    def check(self, target: RepoTarget, *, read_data: bool = False,
              read_data_subset: str | None = None, timeout: timedelta | None = None
              ) -> CheckResult:
        """Structural check, optionally reading pack data. Errors in the repository give a
        CheckResult with ok=False; failures to run check at all raise."""
        args = argv.check_args(read_data=read_data, read_data_subset=read_data_subset)
        result = self._run(target, args, timeout=timeout, lock_retry=True)
        summary = result.stdout.last_of_type("summary")
        if summary is None or result.timed_out or result.terminated or (
                result.returncode in (10, 11, 12)):
            # No verdict about the data: restic could not do the check (locked, offline...).
            raise_for(result, target, "check")
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
        args = argv.forget_args(policy, tags=tags, group_by=group_by, dry_run=dry_run,
                                snapshot_ids=snapshot_ids)
        result = self._run(target, args, lock_retry=True)
        raise_for(result, target, "forget")
        if snapshot_ids:
            return []
        payload = single_json(result, target, "forget")
        return forget_groups(payload)

    def prune(self, target: RepoTarget, *, timeout: timedelta | None = None) -> None:
        result = self._run(target, argv.prune_args(), json_output=False, timeout=timeout,
                           lock_retry=True)
        raise_for(result, target, "prune")

    def copy(self, source: RepoTarget, destination: RepoTarget,
             snapshot_ids: Sequence[str] = (), *, timeout: timedelta | None = None) -> None:
        """Copy snapshots (all when none named) from source to destination. restic copy has no
        JSON output: callers confirm the result with snapshots() on the destination.
        A no_lock source is read without restic's lock (restic's global --no-lock applies to
        the --from-repo side of copy only; the destination is always locked)."""
        if destination.no_lock:
            raise ResticError(f"restic copy cannot write to {destination.display} without "
                              "its lock", "open the destination with its lock")
        with copy_access(source, destination) as access:
            options = (("--no-lock",) if source.no_lock else ()) + access.options
            result = self._run(destination, argv.copy_args(snapshot_ids), json_output=False,
                               env_extra=access.env, pass_fds=access.pass_fds,
                               cacerts=access.cacerts, options=options,
                               timeout=timeout, lock_retry=True,
                               limit_download_kib=source.limit_download_kib)
        if result.timed_out and timeout is not None:
            raise CopyCut(f"restic copy to {destination.display} stopped at its time limit",
                          "the next run copies what is left")
        raise_for(result, destination, "copy")

    def unlock(self, target: RepoTarget) -> int:
        """Remove stale locks only (never --remove-all: that would break a running job).
        Returns how many restic removed."""
        result = self._run(target, argv.unlock_args(), json_output=False,
                           timeout=timedelta(minutes=5))
        raise_for(result, target, "unlock")
        return removed_locks(result)
