"""The ransomware guard's cost on the backup benchmark's data (#16: added wall time ≤ 5 % of
the backup): the backup job with the guard on and with it off, and raw restic, on the same
1 GiB / 20,000-file tree, interleaved in one run; first backups into fresh repositories, then
incremental backups after the same 1 % change for every arm. The guard walks the source and
samples beside restic (a thread); what it adds is the time after restic.

Each arm has its own repository (same data, same machine, same round), so no arm profits from
another's work; the order rotates every round.
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

from bench.backup_restore import FILES, GIB, HOST, make_tree, mutate
from bench.common import BenchResult, drop_tree, password_file, repeats, scale, timed
from drbackup.config import parse_config
from drbackup.jobs.backup import run_backup
from drbackup.jobs.runtime import Runtime

GOAL = 1.05
ON, OFF = "guarded", "unguarded"


class CostBench:
    def __init__(self, work: Path):
        self.work = work
        self.data = work / "data"
        self.repos = work / "repos"
        self.password_file = password_file(work)
        self.restic = shutil.which("restic") or "restic"
        self.read: list[int] = []
        self.guard_seconds: list[float] = []
        self.walk_seconds: list[float] = []
        agencies = [{"id": name, "password_file": str(self.password_file),
                     "guard": {"enabled": name == ON},
                     "sources": [{"id": "data", "kind": "directory",
                                  "paths": [str(self.data)], "watch": False}]}
                    for name in (ON, OFF)]
        document = {"daemon": {"state_dir": str(work / "state"), "cache_dir": str(work / "cache"),
                               "hostname": HOST, "restic": self.restic},
                    "stores": {"local": {"path": str(self.repos)}}, "agencies": agencies}
        path = work / "drbackup.toml"
        path.write_text(tomli_w.dumps(document))
        self.config = parse_config(path.read_text(), path)
        self.rt = Runtime.create(self.config)
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work),
                    "RESTIC_REPOSITORY": str(self.repos / "raw"),
                    "RESTIC_PASSWORD_FILE": str(self.password_file),
                    "RESTIC_CACHE_DIR": str(work / "cache")}

    def restic_cmd(self, *args: str) -> None:
        subprocess.run([self.restic, *args], env=self.env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def backup_raw(self) -> None:
        self.restic_cmd("backup", "--host", HOST, "--tag", "agency=raw", "--", str(self.data))

    def backup_job(self, agency_id: str) -> Callable[[], None]:
        agency = self.config.agency(agency_id)

        def run() -> None:
            outcome = run_backup(self.rt, agency, agency.sources[0], trigger="bench")
            if agency.guard.enabled:
                assert outcome.guard is not None and not outcome.guard.suspect, outcome.guard
                self.read.append(int(outcome.guard.numbers.get("sample_bytes_read", 0)))
                self.guard_seconds.append(float(outcome.guard.numbers.get("guard_seconds",
                                                                           0.0)))
                self.walk_seconds.append(float(outcome.guard.numbers.get("walk_seconds",
                                                                          0.0)))
        return run

    def fresh(self) -> None:
        drop_tree(self.repos)
        drop_tree(self.work / "cache")
        drop_tree(self.work / "state" / "guard")
        self.restic_cmd("init")
        for agency in (ON, OFF):
            self.rt.restic.init(self.rt.target(self.config.agency(agency)))


def _rounds(arms: dict[str, Callable[[], None]], rounds: int,
            before_round: Callable[[], None]) -> dict[str, list[float]]:
    names = list(arms)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        before_round()
        os.sync()
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(timed(arms[name]))
            os.sync()
        print(f"bench:   round {index + 1}/{rounds}: " + ", ".join(
            f"{n} {samples[n][-1]:.2f}s" for n in names), file=sys.stderr, flush=True)
    return samples


def run(work_dir: Path) -> list[BenchResult]:
    logging.getLogger().setLevel(logging.WARNING)
    factor = scale()
    total = int(GIB * factor)
    files = max(100, int(FILES * factor))
    bench = CostBench(work_dir)
    print(f"bench: making a {total / GIB:.2f} GiB / {files} file tree", file=sys.stderr)
    make_tree(bench.data, total, files)
    group = f"Ransomware guard: cost on backups, {total / GIB:.2g} GiB / {files:,} files"
    arms = {"restic": bench.backup_raw, ON: bench.backup_job(ON), OFF: bench.backup_job(OFF)}
    results: list[BenchResult] = []

    first = _rounds(arms, repeats(9), bench.fresh)
    first_read = list(bench.read)
    first_guard = list(bench.guard_seconds)
    first_walk = list(bench.walk_seconds)
    bench.read.clear()
    bench.guard_seconds.clear()
    bench.walk_seconds.clear()
    rng = random.Random(11)
    incremental = _rounds(arms, repeats(9), lambda: mutate(bench.data, rng))
    for label, samples, read, guard, walk in (
            ("first backup", first, first_read, first_guard, first_walk),
            ("incremental backup (1 % changed)", incremental, bench.read, bench.guard_seconds,
             bench.walk_seconds)):
        results.append(BenchResult(
            group=group, name=f"{label}: job with the guard / job without", unit="s",
            samples=samples[ON], baseline=samples[OFF], baseline_name="job without the guard",
            goal=GOAL, goal_text=f"ratio ≤ {GOAL}", note=(
                f"the guard read {statistics.median(read) / 2**20:.1f} MiB of the source per "
                f"backup (median); its walk, comparison and sample took "
                f"{statistics.median(walk):.2f} s beside restic, and it spent "
                f"{statistics.median(guard):.2f} s after restic until its verdict (what was "
                "left of the walk, the counts that need restic's summary, the rules; then the "
                "state, the listing and the signed report are written); restic runs as "
                "without the guard")))
        results.append(BenchResult(
            group=group, name=f"{label}: job with the guard / raw restic", unit="s",
            samples=samples[ON], baseline=samples["restic"]))
    bench.rt.close()
    drop_tree(work_dir)
    return results
