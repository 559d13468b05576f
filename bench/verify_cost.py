"""Verification cost: what share of an agency's repository the daemon's daily verification reads,
how long it takes, and how many days pass until every pack has been read once.

The repository: an agency with one directory source of a realistic shape (many small office
documents, compressible; scans of 1-2 MiB, incompressible; two large archives), backed up 7 times
("a week"), each day a few documents edited or added and a few scans replaced: ~320 MiB of files
at DRBACKUP_BENCH_SCALE=1 (counts and sizes scale down with it), restic's default pack size,
stored on the moto S3 server.

One day of verification, as the daemon runs it with the default `[agencies.verify]` settings:
the check job (`check_job`: "auto" mode, which reads the next `--read-data-subset=k/30` because a
data check is due) and the drill job (`drill_job`: a file drill of every source; a snapshot
larger than `drill_max_bytes` = 256 MiB is sampled, 50 files). Then the full-coverage cycle: one
data check a day (`run_check(mode="subset")`, what "auto" does once `data_check_interval` = 20 h
has passed) until every pack has been read. Then one day again for a small agency (a quarter of
the data: its latest snapshot stays under `drill_max_bytes`, so the drill restores all of it).

How "read" is measured: the S3 server is moto wrapped in a request log (bench/metered_s3.py) that
records every request with the body bytes it actually sent. A pack counts as read when a GET of
its object under `data/` served bytes; the bytes read of a pack are what was served, capped at its
size per day. Shares are over the repository's packs (data and tree packs) and their bytes,
listed from the bucket before the day starts. Tree packs are told apart by the restic cache of the
backups (restic caches exactly the packs holding trees): `restic check` reads all of them every
time (its structure check runs with a fresh cache), so they are read daily by design.
"""

from __future__ import annotations

import os
import random
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import BenchResult, scale
from bench.metered_s3 import MeteredMotoServer, read_log
from drbackup.jobs.check import check_job, run_check
from drbackup.jobs.drills import drill_job
from tests.support.offsite import runtime
from tests.support.workspace import Workspace

GROUP_DAY = "One day of verification, default settings"
GROUP_CYCLE = "Full-coverage cycle: one data check a day"
DAYS_OF_HISTORY = 7
MIB = 1024 * 1024


@dataclass
class Reads:
    """What one phase fetched from the store."""

    seconds: float
    packs: dict[str, int] = field(default_factory=dict)  # pack id -> bytes served
    total_bytes: int = 0  # every GET: packs, index, snapshots, keys, config
    requests: int = 0


def _hex_text(size: int) -> bytes:
    """Text that compresses about 2:1, like office documents."""
    return os.urandom(size // 2 + 1).hex().encode()[:size]


def build_tree(root: Path, factor: float, rng: random.Random) -> dict[str, int]:
    docs, scans, archives = root / "documents", root / "scans", root / "archive"
    for folder in (docs, scans, archives):
        folder.mkdir(parents=True, exist_ok=True)
    counts = {"documents": max(20, int(2000 * factor)), "scans": max(4, int(150 * factor)),
              "archives": 2}
    for index in range(counts["documents"]):
        (docs / f"doc-{index:05d}.txt").write_bytes(_hex_text(rng.randint(4, 96) * 1024))
    for index in range(counts["scans"]):
        (scans / f"scan-{index:04d}.pdf").write_bytes(os.urandom(rng.randint(1024, 2048) * 1024))
    for index in range(counts["archives"]):
        (archives / f"archive-{index}.tar").write_bytes(
            os.urandom(max(64 * 1024, int(12 * MIB * factor))))
    return counts


def one_day_of_changes(root: Path, counts: dict[str, int], day: int, rng: random.Random) -> None:
    """2 % of the documents edited, 1 % added, 2 % of the scans replaced."""
    docs = sorted((root / "documents").iterdir())
    for path in rng.sample(docs, max(1, len(docs) // 50)):
        path.write_bytes(_hex_text(rng.randint(4, 96) * 1024))
    for index in range(max(1, counts["documents"] // 100)):
        (root / "documents" / f"new-{day}-{index:04d}.txt").write_bytes(
            _hex_text(rng.randint(4, 96) * 1024))
    scans = sorted((root / "scans").iterdir())
    for path in rng.sample(scans, max(1, len(scans) // 50)):
        path.write_bytes(os.urandom(rng.randint(1024, 2048) * 1024))


def measured(server: MeteredMotoServer, action: Callable[[], object]) -> Reads:
    start = server.offset()
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    time.sleep(0.3)  # the server logs a request after its body went out
    requests, _ = read_log(server.log_path, start)
    reads = Reads(seconds)
    for request in requests:
        if request.method != "GET" or request.status not in (200, 206):
            continue
        reads.requests += 1
        reads.total_bytes += request.bytes
        parts = request.path.strip("/").split("/")
        if len(parts) >= 3 and parts[-3] == "data" and request.bytes:
            reads.packs[parts[-1]] = reads.packs.get(parts[-1], 0) + request.bytes
    return reads


def merge(*phases: Reads) -> Reads:
    total = Reads(sum(p.seconds for p in phases))
    for phase in phases:
        total.total_bytes += phase.total_bytes
        total.requests += phase.requests
        for pack, sent in phase.packs.items():
            total.packs[pack] = total.packs.get(pack, 0) + sent
    return total


def inventory(server: MeteredMotoServer, bucket: str, prefix: str) -> dict[str, int]:
    """Every pack of the repository: id -> size."""
    client = server.client()
    packs: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                  Prefix=f"{prefix}/data/"):
        for item in page.get("Contents", []):
            packs[str(item["Key"]).rsplit("/", 1)[-1]] = int(item["Size"])
    return packs


def tree_packs(cache_dir: Path) -> set[str]:
    return {p.name for p in cache_dir.glob("*/data/*/*") if p.is_file()}


def shares(reads: Reads, packs: dict[str, int]) -> tuple[float, float]:
    """(% of packs read, % of pack bytes read), a pack's bytes capped at its size."""
    hit = [p for p in reads.packs if p in packs]
    read_bytes = sum(min(reads.packs[p], packs[p]) for p in hit)
    return 100 * len(hit) / len(packs), 100 * read_bytes / sum(packs.values())


def _measure(work: Path, server: MeteredMotoServer, factor: float, *, title: str,
             cycle: bool) -> list[BenchResult]:
    rng = random.Random(20261128)
    data = work / "data"
    counts = build_tree(data, factor, rng)
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    ws = Workspace(work / "ws")
    ws.add_s3_store("offsite", server, bucket)
    ws.add_agency("bench", store="offsite")  # default [agencies.verify]
    ws.add_directory_source("bench", "files", [data])
    ws.cli("repo", "init", check=True)
    for day in range(DAYS_OF_HISTORY):
        if day:
            one_day_of_changes(data, counts, day, rng)
        ws.cli("backup", "--agency", "bench", "--no-progress", check=True)

    rt = runtime(ws)
    try:
        agency = rt.config.agency("bench")
        subsets = agency.verify.check_subsets
        packs = inventory(server, bucket, "bench")
        trees = tree_packs(rt.restic.settings.cache_dir) & set(packs)
        repo_bytes = sum(packs.values())
        load_before = os.getloadavg()[0]
        check = measured(server, lambda: check_job(rt, agency, agency.store, "schedule"))
        drills: list[object] = []
        drill = measured(server, lambda: drills.extend(
            drill_job(rt, agency, agency.store, "schedule")))
        load_after = os.getloadavg()[0]
        today = merge(check, drill)
        outcome = drills[0]
        timing = getattr(outcome, "timing", None)
        sampled = timing is not None and timing.bytes < timing.restore_size
        drill_text = (f"a sample of {agency.verify.drill_sample_files} files"
                      if sampled else "the whole latest snapshot")

        # The cycle: day 1 was subset 1/N; a data check every following day.
        covered = set(check.packs) & set(packs)
        per_day = [check]
        days_to_cover = 1 if covered == set(packs) else None
        for number in range(2, subsets + 2):
            if days_to_cover is not None or not cycle:
                break
            reads = measured(server, lambda: run_check(rt, agency, mode="subset",
                                                       trigger="schedule"))
            per_day.append(reads)
            covered |= set(reads.packs) & set(packs)
            if covered == set(packs):
                days_to_cover = number
        cycle_bytes = sum(r.total_bytes for r in per_day)
        load_end = os.getloadavg()[0]
    finally:
        rt.close()

    data_packs = set(packs) - trees
    repo_text = (f"{repo_bytes / MIB:.0f} MiB in {len(packs)} packs ({len(trees)} tree packs, "
                 f"{sum(packs[p] for p in trees) / MIB:.1f} MiB), {DAYS_OF_HISTORY} snapshots of "
                 f"{sum(counts.values()) + DAYS_OF_HISTORY * counts['documents'] // 100} files")
    day_group = (f"{title}: {GROUP_DAY.lower()} (check 1/{subsets}, drill of {drill_text}), "
                 f"{repo_text}, moto S3")
    check_packs, check_bytes = shares(check, packs)
    drill_packs, drill_bytes = shares(drill, packs)
    day_packs, day_bytes = shares(today, packs)
    data_read = len(set(check.packs) & data_packs)
    load = f"load average {load_before:.2f} before the day, {load_after:.2f} after"
    results = [
        BenchResult(day_group, "check: share of packs read", "%", [check_packs],
                    note=f"{len(set(check.packs) & set(packs))} of {len(packs)} packs: "
                         f"{data_read} of {len(data_packs)} data packs (subset 1/{subsets}) "
                         f"and {len(set(check.packs) & trees)} of {len(trees)} tree packs "
                         "(read by every check's structure pass)"),
        BenchResult(day_group, "check: share of pack bytes read", "%", [check_bytes]),
        BenchResult(day_group, "drill: share of packs read", "%", [drill_packs],
                    note=f"{len(set(drill.packs) & set(packs))} packs touched by restoring "
                         f"{drill_text} ({(timing.bytes if timing else 0) / MIB:.1f} MiB of "
                         f"{(timing.restore_size if timing else 0) / MIB:.1f} MiB); restic "
                         "fetches only the blobs' ranges, the tree packs come from its cache"),
        BenchResult(day_group, "drill: share of pack bytes read", "%", [drill_bytes]),
        BenchResult(day_group, "check + drill: share of packs read", "%", [day_packs]),
        BenchResult(day_group, "check + drill: share of pack bytes read", "%", [day_bytes]),
        BenchResult(day_group, "check + drill: fetched from the store (every GET)", "MiB",
                    [today.total_bytes / MIB],
                    note=f"{today.requests} GET requests; index, snapshots, keys included; "
                         f"repository {repo_bytes / MIB:.0f} MiB"),
        BenchResult(day_group, "check: wall time", "s", [check.seconds], note=load),
        BenchResult(day_group, "drill: wall time", "s", [drill.seconds]),
    ]
    if not cycle:
        return results
    daily_packs = [shares(r, packs)[0] for r in per_day]
    daily_bytes = [shares(r, packs)[1] for r in per_day]
    daily_data = [100 * len(set(r.packs) & data_packs) / max(1, len(data_packs))
                  for r in per_day]
    cycle_group = (f"{GROUP_CYCLE} (--read-data-subset=k/{subsets}, k = 1, 2, …), "
                   f"{repo_bytes / MIB:.0f} MiB repository in {len(packs)} packs, moto S3")
    results += [
        BenchResult(cycle_group, "check: share of data packs read per day", "%", daily_data,
                    note=f"over {len(per_day)} days; with {len(data_packs)} data packs in "
                         f"{subsets} subsets a day reads 0 to a few packs (restic assigns a pack "
                         "to a subset by its id), the mean is what counts: "
                         f"{statistics.mean(daily_data):.2f} %"),
        BenchResult(cycle_group, "check: share of all packs read per day", "%", daily_packs,
                    note="tree packs included (every check reads all of them)"),
        BenchResult(cycle_group, "check: share of pack bytes read per day", "%", daily_bytes,
                    note=f"mean {statistics.mean(daily_bytes):.2f} %"),
        BenchResult(cycle_group, "check: wall time per day", "s", [r.seconds for r in per_day],
                    note=f"load average {load_end:.2f} at the end of the cycle"),
        BenchResult(cycle_group, "days until every pack was read once", "days",
                    [float(days_to_cover) if days_to_cover is not None else float("inf")],
                    goal=float(subsets), goal_text=f"≤ check_subsets ({subsets})",
                    note="counted from the server's log; the last subsets can be empty in a "
                         "small repository, so fewer days than N can suffice; new packs "
                         "written during a cycle wait for their subset's turn"),
        BenchResult(cycle_group, "fetched over the cycle / repository size", "×",
                    [cycle_bytes / repo_bytes],
                    note="every GET of every check of the cycle (pack data once, tree packs, "
                         "index and snapshots every day) over the repository's pack bytes"),
    ]
    return results


def run(work_dir: Path) -> list[BenchResult]:
    server = MeteredMotoServer(work_dir / "moto")
    server.workdir.mkdir(parents=True, exist_ok=True)
    server.start()
    try:
        factor = scale()
        results = _measure(work_dir / "agency", server, factor, title="An agency",
                           cycle=True)
        # A quarter of that stays under drill_max_bytes (256 MiB): the drill restores it all.
        return results + _measure(work_dir / "small", server, factor / 4,
                                  title="A small agency", cycle=False)
    finally:
        server.stop()


if __name__ == "__main__":
    import tempfile

    from bench.common import fmt

    with tempfile.TemporaryDirectory(prefix="drbackup-bench-") as scratch:
        for result in run(Path(scratch)):
            print(f"{result.group} | {result.name}: {fmt(result.median, result.unit)} "
                  f"({fmt(min(result.samples), result.unit)}–"
                  f"{fmt(max(result.samples), result.unit)}) {result.note}")
