"""`make bench` section for the ransomware guard (#16): detection and false alarms on a
generated share of real formats (bench/guard_corpus.py) after a history of normal office days,
then one workload (bench/guard_workloads.py): attacks must be flagged at the first backup that
sees ≥ 5 % of the files (or ≥ 200 files) hit, benign mass changes never. Real restic, a local
repository, the backup job the daemon runs; then the guard's cost (bench/guard_cost.py).

The share, its repository and the state after the history are built once and copied back
before each scenario, so every scenario starts from the same history.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from bench import guard_cost
from bench.common import BenchResult, drop_tree, password_file, scale
from bench.guard_corpus import make_corpus
from bench.guard_workloads import ATTACKS, BENIGN, NORMAL, Scenario, WorkloadReport, files_of
from drbackup.config import parse_config
from drbackup.guard import listing
from drbackup.jobs.backup import run_backup
from drbackup.jobs.guard import listing_path
from drbackup.jobs.runtime import Runtime
from drbackup.jobs.tags import snapshot_tags
from drbackup.state.guard import VerdictRecord

AGENCY, SOURCE = "bench", "share"
HISTORY = 8  # normal office days before the workload: past the 7-backup learning period
SLOW_STEPS = 5  # backups of the slow attack (2 % more files each)
HIT_SHARE, HIT_FILES = 0.05, 200


@dataclass
class Outcome:
    scenario: str
    description: str
    attack: bool
    flagged_at: int | None  # 1-based backup after the workload began
    due_at: int | None  # for an attack: the first backup that sees >= 5 % / 200 files hit
    backups: int
    hit: list[int]  # files hit (changed, encrypted, deleted) as seen by each backup
    verdicts: list[VerdictRecord]

    @property
    def good(self) -> bool:
        if not self.attack:
            return self.flagged_at is None
        if self.due_at is None:  # never reached 5 % / 200 files: nothing was due
            return True
        return self.flagged_at is not None and self.flagged_at <= self.due_at


class World:
    """The share, its repository and drbackup's state, at fixed paths."""

    def __init__(self, work: Path):
        self.work = work
        self.data = work / "share"
        self.base = work / "base"
        password = password_file(work)
        document = {
            "daemon": {"state_dir": str(work / "state"), "cache_dir": str(work / "cache"),
                       "hostname": "bench-host", "restic": shutil.which("restic") or "restic"},
            "stores": {"local": {"path": str(work / "repos")}},
            "agencies": [{"id": AGENCY, "password_file": str(password),
                          "sources": [{"id": SOURCE, "kind": "directory",
                                       "paths": [str(self.data)], "watch": False}]}]}
        path = work / "drbackup.toml"
        path.write_text(tomli_w.dumps(document))
        self.config = parse_config(path.read_text(), path)
        self.agency = self.config.agency(AGENCY)
        self.rt: Runtime | None = None

    def runtime(self) -> Runtime:
        if self.rt is None:
            self.rt = Runtime.create(self.config)
        return self.rt

    def close(self) -> None:
        if self.rt is not None:
            self.rt.close()
            self.rt = None

    def backup(self) -> VerdictRecord:
        outcome = run_backup(self.runtime(), self.agency, self.agency.sources[0],
                             trigger="bench")
        assert outcome.guard is not None, "the guard gave no verdict"
        return outcome.guard

    PARTS = ("share", "repos", "state", "cache")

    def save(self) -> None:
        self.close()
        for part in self.PARTS:
            shutil.copytree(self.work / part, self.base / part, symlinks=True)

    def reset(self) -> None:
        """Back to the saved history. The copied files have new inodes and ctimes, which
        restic and the guard take for modified files: one unguarded backup settles them for
        restic, the listing gets their new lstat (same paths, sizes and looks) and names that
        snapshot as the last assessed one."""
        self.close()
        for part in self.PARTS:
            drop_tree(self.work / part)
            shutil.copytree(self.base / part, self.work / part, symlinks=True)
        rt = self.runtime()
        result = rt.restic.backup(rt.target(self.agency), [str(self.data)], host=rt.hostname,
                                  tags=snapshot_tags(self.agency, self.agency.sources[0]))
        path = listing_path(rt, AGENCY, SOURCE)
        saved = listing.load(path)
        assert saved is not None and result.summary.snapshot_id is not None
        saved.snapshot_id = result.summary.snapshot_id
        for name, entry in saved.entries.items():
            st = os.lstat(name)
            assert st.st_size == entry.size, name
            entry.mtime, entry.ctime, entry.ino = st.st_mtime_ns, st.st_ctime_ns, st.st_ino
        listing.save(path, saved)


def _hit(report: WorkloadReport, attack: bool) -> int:
    if not attack:
        return 0
    return len(report.modified) + len(report.removed) + len(report.renamed)


def _due(hits: list[int], files: int) -> int | None:
    limit = min(HIT_SHARE * files, HIT_FILES)
    total = 0
    for index, count in enumerate(hits, start=1):
        total += count
        if total >= limit:
            return index
    return None


def run_scenario(world: World, name: str, scenario: Scenario, attack: bool,
                 files: int) -> Outcome:
    world.reset()
    rng = random.Random(f"{name}-2026")
    steps = SLOW_STEPS if name == "slow_attack" else 1
    verdicts: list[VerdictRecord] = []
    hits: list[int] = []
    flagged: int | None = None
    for step in range(1, steps + 1):
        if steps > 1:
            NORMAL["daily_edits"](world.data, rng)  # the office works on during a slow attack
        report = scenario(world.data, rng)
        hits.append(_hit(report, attack))
        verdict = world.backup()
        verdicts.append(verdict)
        if verdict.suspect and flagged is None:
            flagged = step
    return Outcome(name, scenario.description, attack, flagged,
                   _due(hits, files) if attack else None, steps, hits, verdicts)


def _note(outcome: Outcome) -> str:
    if outcome.flagged_at is not None:
        verdict = outcome.verdicts[outcome.flagged_at - 1]
        when = (f"suspect at backup {outcome.flagged_at} of {outcome.backups}"
                + (f" (due at {outcome.due_at})" if outcome.attack else ""))
        return f"{when}: {'; '.join(verdict.reasons)}"
    last = outcome.verdicts[-1]
    return (f"clean at all {outcome.backups} backup(s)"
            + ((f" (due at {outcome.due_at})" if outcome.due_at else " (never 5 % / 200 files "
                "hit: not due)") if outcome.attack else "")
            + f": {'; '.join(last.reasons)}")


def detection(work: Path) -> list[BenchResult]:
    factor = scale()
    files = max(120, int(2000 * factor))
    world = World(work)
    print(f"bench: guard corpus of {files} files", file=sys.stderr, flush=True)
    make_corpus(world.data, files=files, target_bytes=int(150 * 2**20 * factor), seed=16)
    history = random.Random(8)
    rt = world.runtime()
    rt.restic.init(rt.target(world.agency))
    for day in range(HISTORY):
        if day:  # each day's edits, then its backup: the saved share is what was assessed
            NORMAL["daily_edits"](world.data, history)
        verdict = world.backup()
        assert not verdict.suspect, f"a normal day was flagged: {verdict.reasons}"
    world.save()
    count = len(files_of(world.data))
    group = f"Ransomware guard: detection, {count:,} files of real formats after {HISTORY} days"
    results = []
    for attack, registry in ((True, ATTACKS), (False, BENIGN)):
        for name, scenario in registry.items():
            print(f"bench:   scenario {name}", file=sys.stderr, flush=True)
            outcome = run_scenario(world, name, scenario, attack, count)
            results.append(BenchResult(
                group=group, name=f"{'attack' if attack else 'benign'}: {name} — "
                f"{scenario.description}", unit="suspect", samples=[
                    float(outcome.good) if attack else float(outcome.flagged_at is not None)],
                goal=1.0 if attack else 0.0, goal_op=">=" if attack else "<=",
                goal_text="flagged by the due backup" if attack else "never flagged",
                note=_note(outcome) + ("" if outcome.good else " — GOAL MISSED")))
    world.close()
    drop_tree(work)
    return results


def run(work_dir: Path) -> list[BenchResult]:
    logging.getLogger().setLevel(logging.WARNING)
    results = detection(work_dir / "detection")
    results += guard_cost.run(work_dir / "cost")
    return results
