"""Crash safety: drbackup is killed with SIGKILL at a random moment of a job, against the real S3
server. After every trial `restic check` passes (stale locks of the dead are removed with
`unlock`, which never touches a live lock), the next job succeeds at once, the state database
passes PRAGMA integrity_check, and no run is recorded as good without its snapshot.

Two ways to die, alternated at random: the drbackup process alone (its restic child lives on,
orphaned, as after a daemon crash) or drbackup with its restic children (power cut, OOM kill of
the service's cgroup). One-shot jobs: backup, forget, prune, restore, the file restore drill
(`verify --kind files`) and copy (`drbackup replicate`: restic copy into a replica repository,
a second bucket on the same server, same key); and the daemon (`drbackup run`, backing up every
2 s, each backup followed by a replication), killed and restarted: it must close the
interrupted run, unlock, and back up again by itself.

After a killed forget, the next forget starts at once, before the orphans ended (forget →
forget), and must succeed: no waiting out lock_wait on a lock whose process went meanwhile.

After a killed copy, additionally: `restic check` passes on the replica too, the next
`drbackup replicate` succeeds at once, the replica then holds every snapshot of the primary
(same original ids and trees), its newest snapshot restores byte-identical to the data, and
every replication the state records as good names snapshots the replica has.

5 trials in `make test`: copy, three of the other one-shot verbs chosen by the seed (successive
runs cover them all) and 1 of the daemon. 50 in `make test-long`: 20 of the daemon, the other 30
five of each one-shot verb, in rounds of every verb in a random order. The seed is printed;
DRBACKUP_CRASH_SEED replays a run."""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.daemon import children
from tests.support.invariants import (
    assert_good_replications_are_real,
    assert_good_runs_are_real,
    assert_repository_consistent,
    direct_s3_target,
    restic_for,
    state_integrity,
    state_runs,
)
from tests.support.servers import MotoServer
from tests.support.trees import manifest
from tests.support.workspace import Workspace

FAST_TRIALS = 5
LONG_TRIALS = 50
FAST_DAEMON = 1  # of which the daemon (`drbackup run`) is killed
LONG_DAEMON = 20
# Every one-shot job verb ("copy" is `drbackup replicate`). The long run takes them in rounds
# (each verb once per round, in a random order); the fast run (fewer trials than verbs) takes
# copy and a choice of the others by the seed (see verb_order).
VERBS = ["backup", "forget", "drill", "prune", "copy", "restore"]
ALWAYS = "copy"
REPLICA = "replica"


def verb_order(rng: random.Random, trials: int) -> list[str]:
    """The verb of each one-shot trial: rounds of every verb once in a random order (30 trials:
    5 of each); when there are fewer trials than verbs, copy and trials-1 others chosen by the
    seed (so successive fast runs cover every verb while each stays about as short as before
    copy joined)."""
    if trials >= len(VERBS):
        order: list[str] = []
        while len(order) < trials:
            order += rng.sample(VERBS, len(VERBS))
        return order[:trials]
    chosen = [ALWAYS, *rng.sample([v for v in VERBS if v != ALWAYS], max(0, trials - 1))]
    rng.shuffle(chosen)
    return chosen[:trials]


def freeze_and_list_children(process: subprocess.Popen[bytes]) -> list[int]:
    """SIGSTOP the process, then list its children: frozen, it cannot start another restic
    between the listing and the kill (which would escape both the kill and the wait)."""
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGSTOP)
    return children(process.pid)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@contextlib.contextmanager
def subreaper() -> Iterator[None]:
    """Orphans of a killed drbackup are re-parented to us instead of PID 1 (as systemd's service
    manager reaps them on a real host): a zombie nobody reaps still "exists" for kill(pid, 0),
    so restic would take its lock for a live one. Linux prctl(PR_SET_CHILD_SUBREAPER).

    Only while the trials run (they reap their orphans in wait_gone): the setting is
    process-wide, and a later test in the same pytest worker that kills drbackup and leaves its
    orphans to init (test_replication's killed copy) would otherwise get zombies nobody reaps,
    and a lock restic never calls stale."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)
    try:
        yield
    finally:
        libc.prctl(36, 0, 0, 0, 0)


def wait_gone(pids: list[int], timeout: float = 120) -> None:
    """Wait until the processes ended, reaping those re-parented to us."""
    deadline = time.monotonic() + timeout
    while True:
        for pid in pids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        if not any(alive(p) or Path(f"/proc/{p}").exists() for p in pids):
            return
        assert time.monotonic() < deadline, f"processes {pids} still run after the crash"
        time.sleep(0.05)


@dataclass
class Trial:
    verb: str
    delay: float
    mode: str  # "drbackup" or "tree"
    returncode: int | None = None  # None: killed before it finished


class CrashLab:
    def __init__(self, workspace: Workspace, server: MotoServer, bucket: str, data: Path,
                 scratch: Path):
        self.workspace = workspace
        self.server = server
        self.bucket = bucket
        self.data = data
        self.scratch = scratch
        self.restic = restic_for(workspace, scratch / "verify-cache")
        self.target = direct_s3_target(workspace, server, bucket, "offsite", "planning")
        self.replica = direct_s3_target(workspace, server, f"{bucket}-{REPLICA}", REPLICA,
                                        "planning")
        self.counter = 0

    def argv(self, verb: str) -> list[str]:
        self.counter += 1
        base = [sys.executable, "-m", "drbackup", "--config", str(self.workspace.write())]
        if verb == "backup":
            return [*base, "backup", "--agency", "planning", "--no-progress"]
        if verb == "restore":
            return [*base, "restore", "--agency", "planning", "--source", "documents",
                    "--no-progress", "--target", str(self.scratch / f"restore-{self.counter}")]
        if verb == "drill":
            return [*base, "verify", "--agency", "planning", "--kind", "files"]
        if verb in ("forget", "prune"):
            return [*base, verb, "--agency", "planning"]
        if verb == "copy":
            return [*base, "replicate", "--agency", "planning"]
        raise ValueError(verb)

    def change_data(self, rng: random.Random) -> None:
        """Five documents rewritten with new text. Text (hex), not random bytes: five .txt files
        turned random are what the ransomware guard calls suspect, and a suspect snapshot
        freezes forget and prune (exit 25) for the rest of the trials."""
        for index in rng.sample(range(60), 5):
            size = rng.randint(1, 40000)
            (self.data / f"doc-{index:03d}.txt").write_text(os.urandom(size // 2 + 1).hex()[:size])

    def prepare_copy(self, rng: random.Random) -> None:
        """Something for the copy to move: new data (about as much as the first copy moved)
        in a new snapshot on the primary."""
        self.change_data(rng)
        (self.data / "scan.bin").write_bytes(os.urandom(2 * 1024 * 1024))
        self.workspace.cli("backup", "--agency", "planning", "--no-progress", check=True)

    def assert_copy_recovered(self, trial: Trial) -> None:
        """After a killed copy: the next replicate succeeds at once, then the replica holds
        every primary snapshot, restores the newest, and passes `restic check` (one check after
        the resumed copy: a copy adds to the repository and repairs nothing, so whatever the
        kill broke is still there to find). The primary is checked by assert_recovered."""
        context = f"after {trial}"
        after = self.workspace.cli("replicate", "--agency", "planning")
        assert after.returncode == 0, f"{context}: {after.stderr}"
        assert state_runs(self.workspace)[-1].result == "success", context
        primary = self.restic.snapshots(self.target)
        copies = self.restic.snapshots(self.replica)
        by_original = {c.original or c.id: c for c in copies}
        for snapshot in primary:
            assert snapshot.id in by_original, f"{context}: {snapshot.id} not on the replica"
            assert by_original[snapshot.id].tree == snapshot.tree, context
        assert_good_replications_are_real(self.workspace, {c.original or c.id for c in copies})
        # The newest snapshot was taken of the data as it is now (prepare_copy).
        newest = max(copies, key=lambda c: c.time)
        restored = self.scratch / f"replica-{self.counter}"
        self.restic.restore(self.replica, newest.id, restored)
        assert manifest(restored / self.data.relative_to("/")) == manifest(self.data), context
        shutil.rmtree(restored)
        assert_repository_consistent(self.restic, self.replica)

    def kill_at(self, trial: Trial) -> None:
        process = subprocess.Popen(self.argv(trial.verb), env=self.workspace.env(),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + trial.delay
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.005)
        children = freeze_and_list_children(process)
        victims = children if trial.mode == "tree" else []
        orphans = children if trial.mode == "drbackup" else []
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            for pid in victims:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)  # restic runs in a session of its own
        process.wait()
        trial.returncode = None if process.returncode == -signal.SIGKILL else process.returncode
        if trial.verb == "forget":
            self.forget_at_once(trial, orphans + victims)
        wait_gone(orphans + victims)

    def forget_at_once(self, trial: Trial, dead: list[int]) -> None:
        """forget → forget: the next forget starts right after the kill, while the orphans may
        still run, and the dead are reaped only as it goes (#21 §2: a lock whose process was
        there at the next forget's `restic unlock` and gone during its wait cost the whole
        lock_wait, then exit 11). It must succeed."""
        errors = self.scratch / f"forget-{self.counter}.stderr"
        with errors.open("w") as sink:
            following = subprocess.Popen(self.argv("forget"), env=self.workspace.env(),
                                         stdout=subprocess.DEVNULL, stderr=sink)
            while following.poll() is None:
                for pid in dead:
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(pid, os.WNOHANG)
                time.sleep(0.05)
        assert following.returncode == 0, f"after {trial}: the next forget: {errors.read_text()}"

    def assert_recovered(self, trial: Trial, *, restore_check: bool) -> None:
        context = f"after {trial}"
        state_db = self.workspace.state_dir / "state.db"
        if state_db.exists():
            assert state_integrity(state_db) == "ok", context
        if trial.verb == "copy":
            self.assert_copy_recovered(trial)
        # The next job succeeds at once: no waiting on a lock the dead left behind.
        after = self.workspace.cli("backup", "--agency", "planning", "--no-progress")
        assert after.returncode == 0, f"{context}: {after.stderr}"
        if trial.verb == "drill":
            # The next drill passes and clears what the killed one left in its scratch space.
            self.workspace.cli("verify", "--agency", "planning", "--kind", "files", check=True)
            scratch = self.workspace.state_dir / "scratch"
            assert not scratch.exists() or not any(scratch.iterdir()), context
        assert_repository_consistent(self.restic, self.target)
        assert state_integrity(state_db) == "ok", context
        # forget removes old snapshots on purpose: the newest good backup must be there.
        assert_good_runs_are_real(self.workspace, self.restic, self.target,
                                  self.data if restore_check else None, self.scratch,
                                  newest_only=True)
        if trial.verb in ("forget", "prune"):
            # The next forget/prune (exclusive lock) must not wait on the dead one's lock.
            self.workspace.cli(trial.verb, "--agency", "planning", check=True)
            assert_repository_consistent(self.restic, self.target)
        assert state_runs(self.workspace)[-1].result == "success", context


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def daemon_trial(lab: CrashLab, rng: random.Random) -> Trial:
    """Start the daemon (its start-up backup, then one every 2 s), SIGKILL it (alone or with
    its restic children) at a random moment, start it again: it closes the interrupted run,
    unlocks, and its next backup succeeds. Then a clean stop (SIGTERM)."""
    workspace = lab.workspace
    workspace.agency("planning")["sources"][0]["schedule"] = "every 2s"
    argv = [sys.executable, "-m", "drbackup", "--config", str(workspace.write()), "run"]
    trial = Trial("daemon", rng.uniform(0.5, 4.0), rng.choice(["drbackup", "tree"]))
    before = len(state_runs(workspace))
    lab.change_data(rng)
    process = subprocess.Popen(argv, env=workspace.env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    time.sleep(trial.delay)
    children = freeze_and_list_children(process)
    process.send_signal(signal.SIGKILL)
    if trial.mode == "tree":
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    process.wait()
    wait_gone(children)
    # Restart: a new successful backup must follow (the daemon recovers by itself).
    def successes() -> int:  # of backups: each is followed by a replication
        return len([r for r in state_runs(workspace)
                    if r.job == "backup" and r.result == "success"])

    before_restart = successes()
    restarted = subprocess.Popen(argv, env=workspace.env(), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: successes() > before_restart, 120,
                 "a successful backup after the restart")
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(timeout=120)
    runs = state_runs(workspace)
    assert len(runs) > before
    assert not [r for r in runs if r.result == "running"], "a run was left open"
    workspace.agency("planning")["sources"][0].pop("schedule")
    return trial


def crash_trials(workspace: Workspace, server: MotoServer, bucket: str, tmp_path: Path,
                 trials: int, daemon_trials: int = 0) -> list[Trial]:
    with subreaper():
        return _crash_trials(workspace, server, bucket, tmp_path, trials, daemon_trials)


def _crash_trials(workspace: Workspace, server: MotoServer, bucket: str, tmp_path: Path,
                  trials: int, daemon_trials: int) -> list[Trial]:
    seed = int(os.environ.get("DRBACKUP_CRASH_SEED", str(random.SystemRandom().randrange(1 << 30))))
    print(f"crash trials: seed {seed} (DRBACKUP_CRASH_SEED={seed} replays them)")
    rng = random.Random(seed)
    data = tmp_path / "data"
    data.mkdir()
    for index in range(60):
        (data / f"doc-{index:03d}.txt").write_text(f"document {index}\n" * 200)
    (data / "scan.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    workspace.add_s3_store("offsite", server, bucket)
    # The replica: a second bucket on the same server with the same key (restic copy opens
    # both repositories with one set of S3 credentials).
    workspace.add_s3_store(REPLICA, server, f"{bucket}-{REPLICA}")
    workspace.add_agency("planning", store="offsite", replicas=[REPLICA])
    workspace.add_directory_source("planning", "documents", [data])
    # Keep one snapshot per hour: every forget has work to do, every prune data to drop.
    workspace.agency("planning")["retention"] = {"keep_within": "1s", "keep_hourly": 1}
    workspace.cli("repo", "init", check=True)  # the primary, then the replica
    lab = CrashLab(workspace, server, bucket, data, tmp_path)

    # How long an undisturbed run takes, so kill moments cover the whole of it.
    started = time.monotonic()
    workspace.cli("backup", "--agency", "planning", "--no-progress", check=True)
    span = {"backup": time.monotonic() - started}
    # A restore or drill of this data reads what the backup wrote: about as long.
    span["restore"] = span["drill"] = span["backup"]
    # The first copy moves that snapshot to the replica; a copy trial's is about as big.
    started = time.monotonic()
    workspace.cli("replicate", "--agency", "planning", check=True)
    span["copy"] = time.monotonic() - started
    print(f"undisturbed runs (s): {span}")

    done = []
    for index, verb in enumerate(verb_order(rng, trials)):
        trial = Trial(verb, rng.uniform(0.05, span.get(verb, span["backup"]) * 1.1),
                      rng.choice(["drbackup", "tree"]))
        started = time.monotonic()
        if verb == "backup":
            lab.change_data(rng)
        if verb == "copy":
            lab.prepare_copy(rng)
        lab.kill_at(trial)
        # The newest good snapshot is restored and compared every tenth trial and at the end.
        lab.assert_recovered(trial, restore_check=index % 10 == 9
                             or (index == trials - 1 and not daemon_trials))
        print(f"{trial}: {time.monotonic() - started:.1f}s with its checks")
        done.append(trial)
    for index in range(daemon_trials):
        started = time.monotonic()
        trial = daemon_trial(lab, rng)
        # The last trial of all restores the newest good snapshot too.
        lab.assert_recovered(trial, restore_check=index == daemon_trials - 1)
        print(f"{trial}: {time.monotonic() - started:.1f}s with its checks")
        done.append(trial)
    return done


def test_sigkill_at_random_moments(workspace: Workspace, s3_server: MotoServer, bucket: str,
                                   tmp_path: Path) -> None:
    trials = crash_trials(workspace, s3_server, bucket, tmp_path, FAST_TRIALS - FAST_DAEMON,
                          FAST_DAEMON)
    assert len(trials) == FAST_TRIALS
    assert ALWAYS in [t.verb for t in trials]


@pytest.mark.slow
def test_sigkill_at_random_moments_long(workspace: Workspace, s3_server: MotoServer,
                                        bucket: str, tmp_path: Path) -> None:
    trials = crash_trials(workspace, s3_server, bucket, tmp_path, LONG_TRIALS - LONG_DAEMON,
                          LONG_DAEMON)
    killed = [t for t in trials if t.returncode is None]
    assert len(killed) >= LONG_TRIALS // 2, "most trials should really kill a running job"
    assert len([t for t in trials if t.verb == "daemon"]) == LONG_DAEMON
    assert {t.verb for t in trials} == {*VERBS, "daemon"}
    assert len([t for t in trials if t.verb == ALWAYS]) >= 5, "several copy trials"
