"""Starting restic: its environment, the one subprocess call with the configured time limit,
and the stale-lock retry (a crashed run's lock is removed with plain `restic unlock`, then the
command runs again, waiting for live locks in rounds with an unlock between them).
`Restic` (engine/restic.py) builds every verb on `Invoker.run`."""

from __future__ import annotations

import logging
import math
import time
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

# Waiting for a lock goes in rounds of `restic --retry-lock`, the first this long, each next one
# twice as long up to the last; `restic unlock` runs between rounds. restic's own wait never
# looks at staleness again, so a lock whose process dies during a round costs the rest of that
# round only, not the whole lock_wait.
LOCK_ROUND_FIRST = timedelta(seconds=2)
LOCK_ROUND_MAX = timedelta(seconds=60)


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

    def __init__(self, settings: ResticSettings,
                 clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self._clock = clock  # how long a lock has been waited for (a fake one in tests)

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
        pass_fds: tuple[int, ...] = (),
        cacerts: tuple[Path, ...] = (),
        limit_download_kib: int | None = None,
        options: tuple[str, ...] = (),
    ) -> ProcessResult:
        own_ca = (target.ca_file,) if target is not None and target.ca_file else ()
        if target is not None and target.no_lock and "--no-lock" not in options:
            options = ("--no-lock", *options)
        cmd = argv.command(self.settings.binary, args, json_output=json_output,
                           limit_upload_kib=target.limit_upload_kib if target else None,
                           limit_download_kib=limit_download_kib or (
                               target.limit_download_kib if target else None),
                           cacerts=own_ca + cacerts, options=options)
        env = self.env(target)
        if env_extra:
            env.update(env_extra)
        # The configured timeout caps every run; a call may ask for less (quick commands).
        limit = min(timeout or self.settings.timeout, self.settings.timeout).total_seconds()
        try:
            # Only when there are any: fakes of run_process in tests predate the option.
            fds: dict[str, tuple[int, ...]] = {"pass_fds": pass_fds} if pass_fds else {}

            def attempt(command: list[str]) -> ProcessResult:
                return run_process(command, env, timeout=limit, on_message=on_message,
                                   stdout_sink=stdout_sink, cwd=cwd, **fds)

            result = attempt(cmd)
            if lock_retry and target is not None:
                result = self._retry_locked(target, cmd, result, attempt)
            return result
        except FileNotFoundError:
            raise ResticNotInstalled(
                f"restic binary {self.settings.binary!r} not found", INSTALL_HINT) from None
        except PermissionError:
            raise ResticNotInstalled(
                f"restic binary {self.settings.binary!r} is not executable", INSTALL_HINT
            ) from None

    def _retry_locked(self, target: RepoTarget, cmd: list[str], result: ProcessResult,
                      attempt: Callable[[list[str]], ProcessResult]) -> ProcessResult:
        """The command again after a lock conflict (exit 11), for up to lock_wait.

        A crashed drbackup's orphaned restic lives on until it writes to the dead parent's pipe
        and dies of SIGPIPE, often before it removed its lock; restic refuses to work next to
        any lock, stale or not, and `--retry-lock` waits on a stale one as on a live one. So
        the first attempt fails fast, plain `unlock` removes only stale locks (a live job's
        lock stays), and the retry waits for live locks in rounds (LOCK_ROUND_FIRST doubling up
        to LOCK_ROUND_MAX) with `unlock` between them: a lock whose process was still there at
        one `unlock` (an orphan not yet dead, or a zombie not yet reaped) and died holding it
        during the wait is removed at the end of that round, instead of being waited on until
        lock_wait ends in exit 11. Without a lock_wait, one plain retry when `unlock` removed
        something.
        """
        wait = self.settings.retry_lock
        deadline = self._clock() + (wait.total_seconds() if wait is not None else 0.0)
        round_seconds = LOCK_ROUND_FIRST.total_seconds()
        first = True
        while result.returncode == 11 and not result.timed_out and not result.terminated:
            removed = self.remove_stale_locks(target)
            if removed is None and first:
                return result  # unlock cannot work here (e.g. read-only credentials)
            first = False
            remaining = deadline - self._clock()
            if remaining < 1.0:  # no lock_wait, or it is spent
                return attempt(cmd) if removed else result
            seconds = math.ceil(min(round_seconds, remaining))
            log.debug("%s is locked: waiting up to %ds for the lock (%.0fs of lock_wait left)",
                      target.display, seconds, remaining)
            result = attempt(argv.with_retry_lock(cmd, timedelta(seconds=seconds)))
            round_seconds = min(round_seconds * 2, LOCK_ROUND_MAX.total_seconds())
        return result

    def remove_stale_locks(self, target: RepoTarget) -> int | None:
        """`restic unlock` (stale locks only; never --remove-all). How many locks it removed, or
        None when it failed (e.g. read-only credentials)."""
        cacerts = (target.ca_file,) if target.ca_file else ()
        result = run_process(argv.command(self.settings.binary, argv.unlock_args(),
                                          json_output=False, cacerts=cacerts),
                             self.env(target), timeout=300.0)
        if result.returncode != 0:
            return None
        removed = removed_locks(result)
        if removed:
            log.warning("removed %d stale restic lock(s) on %s after a lock conflict", removed,
                        target.display)
        return removed
