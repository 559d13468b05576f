"""Scrape latency of the /metrics endpoint with a large fleet in state.

    .venv/bin/python -m bench.scrape [--agencies 50] [--sources 3] [--runs 200] [--scrapes 300]

Builds a state database with synthetic run rows (backups with some failures, checks, drills,
replications, repository stats) for agencies × sources, starts the real exporter
(`serve_metrics`) on an ephemeral loopback port with a live view, and times full HTTP scrapes:
the first (cold: folds the whole history), then steady-state scrapes with and without a new run
recorded between scrapes. Prints p50/p90/p99 and the exposition size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

from drbackup.config.models import Config
from drbackup.metrics import serve_metrics
from drbackup.state import RunCounts, StateDB


class _Live:
    def __init__(self, keys: list[tuple[str, str]]):
        self.keys = keys

    def jobs_running(self) -> int:
        return 2

    def jobs_queued(self) -> int:
        return 7

    def pending_changes(self) -> dict[tuple[str, str], int]:
        return {key: 1 for key in self.keys}

    def watch_overflows(self) -> dict[tuple[str, str], int]:
        return {key: 0 for key in self.keys}

    def next_runs(self) -> dict[tuple[str, str], float]:
        now = time.time()
        return {key: now + 3600 for key in self.keys}


def build(root: Path, agencies: int, sources: int, runs: int) -> tuple[Config, StateDB]:
    password = root / "pw"
    password.write_text("x\n")
    config = Config.model_validate({
        "daemon": {"state_dir": str(root / "state"), "cache_dir": str(root / "cache"),
                   "metrics_listen": "127.0.0.1:0"},
        "stores": {"archive": {"path": str(root / "archive")}},
        "agencies": [{
            "id": f"agency-{a:03d}", "password_file": str(password), "replicas": ["archive"],
            "sources": [{"id": f"source-{s}", "kind": "directory", "paths": ["/srv/x"]}
                        for s in range(sources)],
        } for a in range(agencies)],
    })
    state = StateDB(root / "state" / "state.db")
    rng = random.Random(7)
    start = time.time() - runs * 3600
    for agency in config.agencies:
        for index in range(runs):
            t = start + index * 3600
            for source in agency.sources:
                run_id = state.start_run("backup", agency.id, source=source.id, store="local",
                                         trigger="bench", started_at=t)
                failed = rng.random() < 0.05
                state.finish_run(
                    run_id, "failed" if failed else "success", finished_at=t + rng.uniform(5, 900),
                    counts=None if failed else RunCounts(
                        snapshot_id=os.urandom(4).hex(), files_new=rng.randint(0, 50),
                        files_changed=rng.randint(0, 20), files_unmodified=10_000,
                        files_unreadable=0, bytes_added=rng.randint(0, 10**7),
                        bytes_processed=10**9))
            if index % 24 == 0:
                for job, store, details in (("check", "local", {"kind": "structure"}),
                                            ("replicate", "archive", {}),
                                            ("stats", "local", {"snapshots": index,
                                                                "repository_size_bytes": 10**9})):
                    run_id = state.start_run(job, agency.id, store=store, trigger="bench",
                                             started_at=t + 1000)
                    state.finish_run(run_id, "success", details=details, finished_at=t + 1100)
            if index % 168 == 0:
                run_id = state.start_run("drill", agency.id, store="local", trigger="bench",
                                         started_at=t + 2000)
                state.finish_run(run_id, "success", finished_at=t + 2600,
                                 details={"rto_estimate_seconds": 3000})
    return config, state


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def timed_scrapes(url: str, count: int, between: object = None) -> list[float]:
    times = []
    for _ in range(count):
        if callable(between):
            between()
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - loopback
            response.read()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agencies", type=int, default=50)
    parser.add_argument("--sources", type=int, default=3)
    parser.add_argument("--runs", type=int, default=200, help="backup runs per source")
    parser.add_argument("--scrapes", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="drbackup-bench-") as tmp:
        root = Path(tmp)
        built = time.perf_counter()
        config, state = build(root, args.agencies, args.sources, args.runs)
        rows = len(state.runs_after(0, limit=10**9))
        build_seconds = time.perf_counter() - built
        keys = [(a.id, s.id) for a in config.agencies for s in a.sources]
        server = serve_metrics(config, state, _Live(keys))
        try:
            cold = timed_scrapes(server.url, 1)[0]
            with urllib.request.urlopen(server.url, timeout=30) as response:  # noqa: S310
                size = len(response.read())
            steady = timed_scrapes(server.url, args.scrapes)
            agency = config.agencies[0]

            def new_run() -> None:
                run_id = state.start_run("backup", agency.id, source=agency.sources[0].id,
                                         store="local", trigger="bench")
                state.finish_run(run_id, "success", counts=RunCounts(bytes_added=1))

            busy = timed_scrapes(server.url, args.scrapes, new_run)
        finally:
            server.stop()
            state.close()
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} "
                   f"{platform.release()}, Python {platform.python_version()}",
        "agencies": args.agencies, "sources_per_agency": args.sources, "state_rows": rows,
        "state_build_seconds": round(build_seconds, 1), "exposition_bytes": size,
        "cold_first_scrape_ms": round(cold, 1),
    }
    for name, values in (("steady", steady), ("with_new_run_each_scrape", busy)):
        result[name] = {"p50_ms": round(percentile(values, 0.5), 2),
                        "p90_ms": round(percentile(values, 0.9), 2),
                        "p99_ms": round(percentile(values, 0.99), 2),
                        "mean_ms": round(statistics.fmean(values), 2),
                        "scrapes": len(values)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
