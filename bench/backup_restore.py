"""drbackup against raw restic on the same data and the same (local) repository, interleaved:
first backup, incremental backup and restore of a 1 GiB / 20,000-file tree.

Three arms per measure, their order rotated every round so neither profits from a warmer cache:
- restic: the restic command a script would run, nothing else;
- drbackup job: the job function the daemon calls (run_backup / restore_snapshot) in-process,
  with its state records, version check and snapshot lookup; the daemon's steady state;
- drbackup CLI: `drbackup backup` / `drbackup restore` as a fresh process, interpreter start-up
  and imports included (a one-shot run from cron or a terminal).
The goal (ratio of medians ≤ 1.03) is judged for the job, and for the CLI's restore (the
emergency-restore issue asks it of `drbackup restore`); the CLI's backups are reported with its
fixed start-up cost measured separately.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import tomli_w

from bench.common import BenchResult, drop_tree, repeats, scale, timed
from drbackup.config import parse_config
from drbackup.jobs.backup import run_backup
from drbackup.jobs.restore import list_snapshots, pick_snapshot, restore_snapshot
from drbackup.jobs.runtime import Runtime

GIB = 1 << 30
FILES = 20_000
LARGE_FILES = 20
GOAL = 1.03
HOST = "bench-host"
AGENCY = "bench"
SOURCE = "data"


def make_tree(root: Path, total_bytes: int, files: int, seed: int = 7) -> None:
    """`files` files of random (incompressible) content totalling `total_bytes`: many small
    files in 100-file folders plus LARGE_FILES big ones holding about half of the bytes."""
    rng = random.Random(seed)
    large = min(LARGE_FILES, max(1, files // 100))
    small = files - large
    small_budget = total_bytes // 2
    sizes = [rng.randint(512, max(1024, 2 * small_budget // max(small, 1))) for _ in range(small)]
    factor = small_budget / max(sum(sizes), 1)
    sizes = [max(1, int(s * factor)) for s in sizes]
    large_size = (total_bytes - sum(sizes)) // large
    for index, size in enumerate(sizes):
        folder = root / f"d{index // 100:04d}"
        if index % 100 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{index:05d}.bin").write_bytes(os.urandom(size))
    big = root / "large"
    big.mkdir(parents=True, exist_ok=True)
    for index in range(large):
        with (big / f"large-{index:02d}.bin").open("wb") as handle:
            remaining = large_size
            while remaining > 0:
                chunk = min(remaining, 8 << 20)
                handle.write(os.urandom(chunk))
                remaining -= chunk


def mutate(root: Path, rng: random.Random, share: float = 0.01) -> None:
    """An incremental change: rewrite `share` of the small files, append 1 MiB to a big one."""
    small = sorted(root.glob("d*/f*.bin"))
    for path in rng.sample(small, max(1, int(len(small) * share))):
        path.write_bytes(os.urandom(path.stat().st_size))
    large = sorted(root.glob("large/*.bin"))
    if large:
        with rng.choice(large).open("ab") as handle:
            handle.write(os.urandom(1 << 20))


class Bench:
    def __init__(self, work: Path):
        self.work = work
        self.data = work / "data"
        self.repos = work / "repos"
        self.repo = self.repos / AGENCY
        self.cache = work / "cache"
        self.state = work / "state"
        secrets = work / "secrets"
        secrets.mkdir(parents=True, exist_ok=True)
        self.password_file = secrets / "bench.password"
        self.password_file.write_text("bench-password-not-secret\n")
        self.password_file.chmod(0o600)
        self.restic = shutil.which("restic") or "restic"
        document = {
            "daemon": {"state_dir": str(self.state), "cache_dir": str(self.cache),
                       "hostname": HOST, "restic": self.restic},
            "stores": {"local": {"path": str(self.repos)}},
            "agencies": [{"id": AGENCY, "password_file": str(self.password_file),
                          "sources": [{"id": SOURCE, "kind": "directory",
                                       "paths": [str(self.data)], "watch": False}]}],
        }
        self.config_path = work / "drbackup.toml"
        self.config_path.write_text(tomli_w.dumps(document))
        self.config = parse_config(self.config_path.read_text(), self.config_path)
        self.agency = self.config.agency(AGENCY)
        self.source = self.agency.source(SOURCE)
        self.rt = Runtime.create(self.config)
        self.restore_target = work / "restore-target"
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work),
                    "RESTIC_REPOSITORY": str(self.repo),
                    "RESTIC_PASSWORD_FILE": str(self.password_file),
                    "RESTIC_CACHE_DIR": str(self.cache)}

    # -- the arms ---------------------------------------------------------------------------

    def restic_cmd(self, *args: str) -> None:
        subprocess.run([self.restic, *args], env=self.env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def drbackup_cli(self, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "drbackup", "--config", str(self.config_path),
                        "--quiet", *args], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env={**os.environ, "HOME": str(self.work)})

    def backup_restic(self) -> None:
        self.restic_cmd("backup", "--host", HOST, "--tag", f"agency={AGENCY}",
                        "--tag", f"source={SOURCE}", "--tag", "kind=directory",
                        "--", str(self.data))

    def backup_job(self) -> None:
        run_backup(self.rt, self.agency, self.source, trigger="bench")

    def backup_cli(self) -> None:
        self.drbackup_cli("backup", "--agency", AGENCY, "--no-progress")

    def latest_id(self) -> str:
        return pick_snapshot(list_snapshots(self.rt, self.agency, SOURCE)).id

    def restore_restic(self, snapshot_id: str) -> None:
        # As drbackup does, by id; drbackup also lists the snapshots first to find it.
        self.restic_cmd("restore", snapshot_id, "--target", str(self.restore_target))

    def restore_job(self, snapshot_id: str) -> None:
        snapshots = list_snapshots(self.rt, self.agency, SOURCE)
        restore_snapshot(self.rt, self.agency, pick_snapshot(snapshots, snapshot_id),
                         self.restore_target, trigger="bench")

    def restore_cli(self, snapshot_id: str) -> None:
        self.drbackup_cli("restore", "--agency", AGENCY, "--source", SOURCE, "--snapshot",
                          snapshot_id, "--target", str(self.restore_target), "--no-progress")

    def fresh_repository(self) -> None:
        drop_tree(self.repo)
        drop_tree(self.cache)
        self.restic_cmd("init")


def interleave(arms: dict[str, Callable[[], None]], rounds: int,
               before: Callable[[], None] | None = None,
               after: Callable[[], None] | None = None) -> dict[str, list[float]]:
    """Run every arm once per round, rotating the order each round; only the arm is timed."""
    names = list(arms)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            if before is not None:
                before()
            # Write back what the previous run left dirty, so it does not slow the next arm.
            os.sync()
            samples[name].append(timed(arms[name]))
            if after is not None:
                after()
            os.sync()
        print(f"bench:   round {round_index + 1}/{rounds}: " + ", ".join(
            f"{n} {samples[n][-1]:.2f}s" for n in names), file=sys.stderr, flush=True)
    return samples


def startup_cost(bench: Bench, rounds: int = 5) -> list[float]:
    """What every CLI run pays before any restic call: a Python interpreter and the imports
    drbackup's verbs need (drbackup.cli.main and the job modules)."""
    code = "import drbackup.cli.main, drbackup.jobs.backup, drbackup.jobs.restore"
    return [timed(lambda: subprocess.run([sys.executable, "-c", code], check=True))
            for _ in range(rounds)]


def _result(group: str, name: str, arm: list[float], baseline: list[float], *,
            judged: bool, note: str = "") -> BenchResult:
    return BenchResult(group=group, name=name, unit="s", samples=arm, baseline=baseline,
                       goal=GOAL if judged else None, goal_text=f"ratio ≤ {GOAL}",
                       note=note)


def _gap(arm: list[float], base: list[float]) -> float:
    return statistics.median(arm) - statistics.median(base)


def _cli_note(cli: list[float], base: list[float], startup: list[float]) -> str:
    extra = statistics.median(cli) - statistics.median(base)
    return (f"the CLI takes {extra:+.2f} s over restic per run; a fresh interpreter with "
            f"drbackup's imports alone costs {statistics.median(startup):.2f} s (measured "
            "below), paid once per process: the daemon does not pay it per job")


def run(work_dir: Path) -> list[BenchResult]:
    logging.getLogger().setLevel(logging.WARNING)
    factor = scale()
    total = int(GIB * factor)
    files = max(100, int(FILES * factor))
    bench = Bench(work_dir)
    print(f"bench: making a {total / GIB:.2f} GiB / {files} file tree", file=sys.stderr)
    make_tree(bench.data, total, files)
    label = f"{total / GIB:.2g} GiB / {files:,} files"
    group = f"Backup and restore, {label}, local repository"
    results: list[BenchResult] = []

    # First backup: every run into a fresh repository with a cold restic cache.
    first = interleave({"restic": bench.backup_restic, "job": bench.backup_job,
                        "cli": bench.backup_cli}, repeats(3), before=bench.fresh_repository)
    startup = startup_cost(bench)
    results += [
        _result(group, "first backup: drbackup job (daemon)", first["job"], first["restic"],
                judged=True),
        _result(group, "first backup: drbackup CLI (one-shot)", first["cli"], first["restic"],
                judged=False, note=_cli_note(first["cli"], first["restic"], startup)),
    ]

    # Incremental: the last first-backup's repository stays; each run after a 1 % change.
    rng = random.Random(11)
    incremental = interleave({"restic": bench.backup_restic, "job": bench.backup_job,
                              "cli": bench.backup_cli}, repeats(5),
                             before=lambda: mutate(bench.data, rng))
    results += [
        _result(group, "incremental backup (1 % of files changed): drbackup job (daemon)",
                incremental["job"], incremental["restic"], judged=True),
        _result(group, "incremental backup (1 % of files changed): drbackup CLI (one-shot)",
                incremental["cli"], incremental["restic"], judged=False,
                note=_cli_note(incremental["cli"], incremental["restic"], startup)),
    ]

    # Restore of the latest snapshot into an empty directory.
    snapshot_id = bench.latest_id()
    restore = interleave(
        {"restic": lambda: bench.restore_restic(snapshot_id),
         "job": lambda: bench.restore_job(snapshot_id),
         "cli": lambda: bench.restore_cli(snapshot_id)},
        repeats(5), after=lambda: drop_tree(bench.restore_target))
    # The job's fixed cost before restic restores: finding the snapshot. From the snapshot list
    # cached in the state database when the repository's snapshot names still match it (every
    # round above after the first); `restic snapshots` otherwise (first restore after a backup,
    # a fresh host), as `fresh=True` forces here.
    lookup = [timed(lambda: list_snapshots(bench.rt, bench.agency, SOURCE))
              for _ in range(repeats(5))]
    lookup_cold = [timed(lambda: list_snapshots(bench.rt, bench.agency, SOURCE, fresh=True))
                   for _ in range(repeats(5))]
    results += [
        _result(group, "restore: drbackup job (daemon)", restore["job"], restore["restic"],
                judged=True, note=(
                    f"the job takes {_gap(restore['job'], restore['restic']):+.2f} s over "
                    f"restic; it finds the snapshot from the cached list (median "
                    f"{statistics.median(lookup) * 1000:.0f} ms) except in the first round, "
                    "which asks `restic snapshots` (measured below)")),
        BenchResult(group=group, name="snapshot lookup before a restore, cached list valid",
                    unit="s", samples=lookup),
        BenchResult(group=group, name="snapshot lookup before a restore, first after a backup "
                    "(restic snapshots)", unit="s", samples=lookup_cold),
        _result(group, "restore: drbackup CLI (one-shot)", restore["cli"], restore["restic"],
                judged=True, note=_cli_note(restore["cli"], restore["restic"], startup)),
        BenchResult(group=group, name="CLI start-up: interpreter + drbackup imports",
                    unit="s", samples=startup,
                    note="python -c 'import drbackup.cli.main, drbackup.jobs.…'"),
    ]
    bench.rt.close()
    drop_tree(work_dir)
    return results
