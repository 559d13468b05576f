"""A killed `drbackup forget`, then the next `drbackup forget` at once (issue #21 §2): the next
one must not wait its whole lock_wait on the dead one's lock and fail with exit 11.

The window: the dead run's restic lock still has a process when the next forget's `restic
unlock` looks, so the lock rightly stays; the process goes a moment later, its lock left behind,
and the `--retry-lock` wait that follows never looks at staleness again (restic waits on any
lock, stale or not: internal/repository/lock.go). That process is either the orphaned restic of
a drbackup killed alone (it lives on until it writes to the dead drbackup's pipe and dies of
SIGPIPE, often before its own unlock) or a restic killed with drbackup and not yet reaped (a
zombie: restic's liveness test, kill(pid, SIGHUP), still finds it; this machine's PID 1 reaps
late).

The fast test holds the window open on purpose, once with a zombie and once with a live orphan
(frozen with SIGSTOP), until the next forget waits. The slow one (`make test-long`) kills at
random moments around the lock creation of a forget's restic runs, drbackup alone or with its
children, reaps the dead late (as a slow init does) and starts the next forget at once; every
next forget must succeed long before its lock_wait. Local repository: the window is restic's,
not the store's. DRBACKUP_KILLED_FORGET_SEED replays the slow trials."""

from __future__ import annotations

import contextlib
import functools
import os
import random
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.test_crash_safety import alive, subreaper
from tests.support.daemon import children
from tests.support.workspace import Workspace

LOCK_WAIT = 30.0  # seconds: before the fix the next forget waited all of it, then exited 11
LONG_TRIALS = 30


@pytest.fixture
def repo(workspace: Workspace, tmp_path: Path) -> Iterator[tuple[Workspace, Path, Path]]:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("first\n")
    workspace.config["stores"]["disk"] = {"path": str(tmp_path / "repos")}
    workspace.config["daemon"]["lock_wait"] = f"{LOCK_WAIT:.0f}s"
    workspace.add_agency("planning", store="disk")
    workspace.add_directory_source("planning", "docs", [data])
    # One snapshot an hour: every forget after a new backup has something to remove.
    workspace.agency("planning")["retention"] = {"keep_within": "1s", "keep_hourly": 1}
    workspace.cli("repo", "init", check=True)
    workspace.cli("backup", "--agency", "planning", "--no-progress", check=True)
    yield workspace, tmp_path / "repos" / "planning", data


def locks(repository: Path) -> set[str]:
    """Lock files proper (restic writes `<id>-tmp-<n>` first, then renames it)."""
    return {name for name in os.listdir(repository / "locks")
            if re.fullmatch(r"[0-9a-f]{64}", name)}


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode() for part in raw.rstrip(b"\0").split(b"\0")]


def restic_children(pid: int) -> dict[int, list[str]]:
    found = {child: cmdline(child) for child in children(pid)}
    return {child: argv for child, argv in found.items() if argv and "restic" in argv[0]}


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.001)


def forget(ws: Workspace) -> subprocess.Popen[str]:
    ws.write()
    return subprocess.Popen([*ws.cli_argv(), "forget", "--agency", "planning"], env=ws.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("holder", ["zombie", pytest.param("orphan", marks=pytest.mark.slow)])
def test_a_lock_that_turns_stale_during_the_wait_is_not_waited_on(
        repo: tuple[Workspace, Path, Path], holder: str) -> None:
    """zombie: drbackup and its restic SIGKILLed (kill -9 of the tree) once restic's lock file
    exists; the dead restic is reaped only when the next forget already waits (a slow init).
    orphan: drbackup alone SIGKILLed, its restic kept alive (frozen) holding the lock until the
    next forget waits, then killed. Either way the lock's process still exists at the next
    forget's `restic unlock` and is gone a moment later, its lock left behind."""
    ws, repository, _ = repo
    with subreaper():
        killed = forget(ws)
        # The plan: `forget --dry-run`, restic's exclusive lock. Kill once its lock file exists.
        dry_run: list[int] = []

        def holding() -> bool:
            dry_run[:] = [pid for pid, argv in restic_children(killed.pid).items()
                          if "--dry-run" in argv]
            return bool(dry_run) and bool(locks(repository))

        wait_for(holding, "the planning restic to take its lock")
        [child] = dry_run
        if holder == "orphan":
            os.kill(child, signal.SIGSTOP)
        killed.kill()
        if holder == "zombie":
            os.kill(child, signal.SIGKILL)
            wait_for(lambda: not alive(child), "restic to die")
        killed.wait()
        held = locks(repository)
        assert held, "the lock is gone before the next forget started"

        started = time.monotonic()
        following = forget(ws)
        # The next forget met the lock, ran `restic unlock` (the lock's process exists: its lock
        # stays) and now waits with --retry-lock. Only then does the process go for good.
        wait_for(lambda: any("--retry-lock" in argv
                             for argv in restic_children(following.pid).values()),
                 "the next forget to wait for the lock")
        assert locks(repository) == held, "a lock was taken for stale while its process lived"
        if holder == "orphan":
            os.kill(child, signal.SIGKILL)
        _, status = os.waitpid(child, 0)  # reaped: from now on its lock is stale
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status
        _, err = following.communicate(timeout=LOCK_WAIT + 60)
        elapsed = time.monotonic() - started
    assert following.returncode == 0, f"exit {following.returncode} after {elapsed:.1f}s: {err}"
    assert elapsed < LOCK_WAIT / 2, f"waited {elapsed:.1f}s on a stale lock"
    assert "removed 1 stale restic lock" in err
    assert not locks(repository)


# -- many trials (make test-long) ---------------------------------------------------------------


def restic_env(ws: Workspace, repository: Path) -> dict[str, str]:
    return {**os.environ, "RESTIC_REPOSITORY": str(repository),
            "RESTIC_PASSWORD_FILE": str(ws.root / "secrets" / "planning.password"),
            "RESTIC_CACHE_DIR": str(ws.root / "trial-cache")}


def new_snapshots(ws: Workspace, repository: Path, data: Path, rng: random.Random) -> None:
    """Two more snapshots (straight with restic, fast): the forget then has one to remove,
    so it runs all of its restic steps (snapshots, forget --dry-run, forget <ids>, snapshots)."""
    for _ in range(2):
        (data / "a.txt").write_text(f"{rng.random()}\n")
        subprocess.run(["restic", "backup", "--quiet", "--host", "test-host", str(data)],
                       env=restic_env(ws, repository), check=True, stdout=subprocess.DEVNULL)


def kill_around_a_lock(ws: Workspace, repository: Path, rng: random.Random
                       ) -> tuple[str, list[int]]:
    """Start a forget and SIGKILL it around the creation of one of its restic runs' locks:
    when the step's restic starts (before its lock) or once its lock exists (within restic's
    200 ms re-check, or after), drbackup alone or with its children. Returns what it did and
    the restic children it left (orphaned or killed, re-parented to us)."""
    step = rng.randrange(4)
    after_lock = rng.random() < 0.7
    delay = rng.uniform(0, 0.3 if after_lock else 0.1)
    tree = rng.random() < 0.5
    killed = forget(ws)
    seen: set[int] = set()

    def at_step() -> bool:
        seen.update(restic_children(killed.pid))
        return killed.poll() is not None or (
            len(seen) > step and (not after_lock or bool(locks(repository))))

    wait_for(at_step, "the forget to reach its step")
    time.sleep(delay)
    with contextlib.suppress(ProcessLookupError):
        killed.send_signal(signal.SIGSTOP)  # no new restic between the listing and the kill
    victims = children(killed.pid)
    killed.kill()
    if tree:
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)  # restic runs in a session of its own
    killed.wait()
    what = (f"step {step} {'after' if after_lock else 'before'} its lock +{delay:.3f}s, "
            f"{'tree' if tree else 'drbackup'}")
    return what, victims


def reap(orphans: list[int]) -> None:
    for pid in orphans:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def gone(orphans: list[int]) -> bool:
    """Every orphan ended and was reaped."""
    reap(orphans)
    return not any(alive(pid) or Path(f"/proc/{pid}").exists() for pid in orphans)


def reap_late(following: subprocess.Popen[str], orphans: list[int], reap_after: float) -> None:
    """While the next forget runs: leave the dead orphans unreaped for reap_after seconds (a
    slow init: kill(pid, 0) still finds a zombie), then reap them as they end."""
    started = time.monotonic()
    while following.poll() is None:
        if time.monotonic() - started > reap_after:
            reap(orphans)
        time.sleep(0.01)


@pytest.mark.slow
def test_killed_forget_then_forget_many_trials(repo: tuple[Workspace, Path, Path]) -> None:
    ws, repository, data = repo
    seed = int(os.environ.get("DRBACKUP_KILLED_FORGET_SEED",
                              str(random.SystemRandom().randrange(1 << 30))))
    print(f"killed forget trials: seed {seed} (DRBACKUP_KILLED_FORGET_SEED={seed} replays)")
    rng = random.Random(seed)
    with subreaper():
        for index in range(LONG_TRIALS):
            new_snapshots(ws, repository, data, rng)
            what, orphans = kill_around_a_lock(ws, repository, rng)
            reap_after = rng.uniform(0, 3)
            started = time.monotonic()
            following = forget(ws)  # at once: the orphans may still run
            reap_late(following, orphans, reap_after)
            _, err = following.communicate()
            elapsed = time.monotonic() - started
            context = f"trial {index} (seed {seed}: {what}, reaped after {reap_after:.1f}s)"
            assert following.returncode == 0, f"{context}: exit {following.returncode}: {err}"
            assert elapsed < LOCK_WAIT / 2, f"{context}: waited {elapsed:.1f}s"
            wait_for(functools.partial(gone, orphans), f"{context}: the orphans to end")
            print(f"{context}: next forget in {elapsed:.1f}s")
    ws.cli("unlock", "--agency", "planning", check=True)
    check = subprocess.run(["restic", "check"], capture_output=True, text=True, check=False,
                           env=restic_env(ws, repository))
    assert check.returncode == 0, check.stderr
