"""Starting restic: its environment, the one subprocess call with the configured time limit,
and the stale-lock retry (a crashed run's lock is removed with plain `restic unlock`, then the
command runs once more). `Restic` (engine/restic.py) builds every verb on `Invoker.run`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO

import drbackup.engine.argv as argv
from drbackup.engine.errors import ResticNotInstalled
from drbackup.engine.jsonlines import JsonObject
from drbackup.engine.models import RepoTarget
from drbackup.engine.output import removed_locks
from drbackup.engine.runner import ProcessResult, child_environment, run_process
from drbackup.engine.version import INSTALL_HINT

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResticSettings:
    binary: str = "restic"
    cache_dir: Path = Path("/var/cache/drbackup")
    timeout: timedelta = timedelta(hours=6)
    retry_lock: timedelta | None = None
    # Where to remember `restic version` per binary file (path, inode, size, mtime), so a
    # one-shot command does not start restic once more just to learn what it already knew.
    version_memo: Path | None = None


class Invoker:
    """Runs restic for one ResticSettings. Thread-safe: each call is its own process."""

    def __init__(self, settings: ResticSettings):
        self.settings = settings

    def env(self, target: RepoTarget | None) -> dict[str, str]:
        extra = {"RESTIC_CACHE_DIR": str(self.settings.cache_dir), "RESTIC_PROGRESS_FPS": "0.5"}
        if target is not None:
            extra["RESTIC_REPOSITORY"] = target.url
            extra["RESTIC_PASSWORD_FILE"] = str(target.password_file)
            extra.update(dict(target.backend_env))
        return child_environment(extra)

    def run(
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
        cmd = argv.command(self.settings.binary, args, json_output=json_output,
                           limit_upload_kib=target.limit_upload_kib if target else None)
        env = self.env(target)
        if env_extra:
            env.update(env_extra)
        # The configured timeout caps every run; a call may ask for less (quick commands).
        limit = min(timeout or self.settings.timeout, self.settings.timeout).total_seconds()
        try:
            result = run_process(cmd, env, timeout=limit, on_message=on_message,
                                 stdout_sink=stdout_sink, cwd=cwd)
            if (lock_retry and target is not None and result.returncode == 11
                    and not result.timed_out and not result.terminated):
                # A crashed drbackup's orphaned restic dies on SIGPIPE and leaves its lock;
                # restic refuses to work next to it even when stale, and --retry-lock would
                # wait the whole lock_wait on it. So the first attempt fails fast, plain
                # `unlock` removes only stale locks (a live job's lock stays), and only the
                # retry waits, for live locks alone, up to lock_wait.
                removed = self.remove_stale_locks(target)
                wait = self.settings.retry_lock
                if removed is not None and (removed or wait is not None):
                    retry = cmd if wait is None else argv.with_retry_lock(cmd, wait)
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

    def remove_stale_locks(self, target: RepoTarget) -> int | None:
        """`restic unlock` (stale locks only; never --remove-all). How many locks it removed, or
        None when it failed (e.g. read-only credentials)."""
        result = run_process([self.settings.binary, *argv.unlock_args()],
                             self.env(target), timeout=300.0)
        if result.returncode != 0:
            return None
        removed = removed_locks(result)
        if removed:
            log.warning("removed %d stale restic lock(s) on %s after a lock conflict", removed,
                        target.display)
        return removed
