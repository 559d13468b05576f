"""Adapters from benchmark scripts written before the bench/common.py contract (each with its own
main() and figures) to `run(work_dir) -> list[BenchResult]`, so `make bench` reports them too."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from bench.common import BenchResult, scale
from tests.support.servers import MotoServer
from tests.support.workspace import Workspace


def db_dump(work_dir: Path) -> list[BenchResult]:
    """bench/db_dump.py: a PostgreSQL database dumped into restic by drbackup vs by hand.
    Size: DRBACKUP_BENCH_DB_MB (default 1024 MiB) times DRBACKUP_BENCH_SCALE."""
    from bench import db_dump as script

    size_mb = max(8, int(int(os.environ.get("DRBACKUP_BENCH_DB_MB", "1024")) * scale()))
    figures = script.run(size_mb)
    mib = 1 << 20
    group = f"PostgreSQL dump + backup, {figures.database_bytes / mib:.0f} MiB database"
    return [
        BenchResult(group=group, name="dump + backup: drbackup (one run each)", unit="s",
                    samples=[figures.drbackup_seconds], baseline=[figures.by_hand_seconds],
                    baseline_name="pg_dump -Fc > file && restic backup file",
                    note="baseline: pg_dump -Fc > file && restic backup file"),
        BenchResult(group=group, name="bytes added after 1 % of rows changed (scattered): "
                    "drbackup", unit="MB",
                    samples=[figures.drbackup_added_after_1pct_scattered[1] / 1e6],
                    baseline=[figures.by_hand_added_after_1pct_scattered[1] / 1e6],
                    note="restic's data_added_packed; baseline as above"),
        BenchResult(group=group, name="bytes added after 1 % of rows changed (one id range): "
                    "drbackup", unit="MB",
                    samples=[figures.drbackup_added_after_1pct_clustered[1] / 1e6],
                    baseline=[figures.by_hand_added_after_1pct_clustered[1] / 1e6]),
    ]


def drill(work_dir: Path) -> list[BenchResult]:
    """bench/drill_bench.py: a file restore drill (`drbackup verify --kind files`) on a local
    store and on the moto S3 server: throughput and the full-restore (RTO) estimate."""
    from bench import drill_bench as script

    mib = max(8, int(256 * scale()))
    data = work_dir / "data"
    data.mkdir(parents=True, exist_ok=True)
    for index in range(mib // 4):
        (data / f"f{index}.bin").write_bytes(os.urandom(4 << 20))
    restic = shutil.which("restic") or "restic"
    results: list[BenchResult] = []
    moto = MotoServer(work_dir / "moto")
    try:
        for label in ("local store", "moto S3"):
            ws = Workspace(work_dir / label.replace(" ", "-"))
            ws.config["daemon"]["restic"] = restic
            store = "local"
            if label == "moto S3":
                moto.start()
                ws.add_s3_store("offsite", moto, f"bench-{uuid.uuid4().hex[:8]}")
                store = "offsite"
            ws.add_agency("bench", store=store, verify={"drill_max_bytes": f"{mib + 1}MiB"})
            ws.add_directory_source("bench", "data", [data])
            figures = script._measure(ws)
            group = f"File restore drill, {mib} MiB"
            results += [
                BenchResult(group=group, name=f"{label}: drill throughput", unit="MiB/s",
                            samples=[figures["throughput_mib_s"]]),
                BenchResult(group=group, name=f"{label}: full-restore estimate (RTO)",
                            unit="s", samples=[figures["rto_estimate_seconds"]]),
            ]
    finally:
        moto.stop()
    return results


def daemon_idle(work_dir: Path) -> list[BenchResult]:
    """bench/daemon_idle.py: the daemon idle on a large watched tree (RSS, CPU) and the delay
    from a file change to its snapshot. Sizes: 100,000 files / 10,000 dirs idle for 60 s, 20
    changes in a 10,000-file tree with debounce 2 s; DRBACKUP_BENCH_SCALE shrinks them."""
    from bench import daemon_idle as script

    factor = scale()
    files = max(1000, int(100_000 * factor))
    idle = script.idle_phase(work_dir, files, max(100, files // 10),
                             60.0 if factor >= 1 else 10.0)
    debounce = "2s"
    changes = 20 if factor >= 1 else 5
    latency = script.latency_phase(work_dir, max(500, int(10_000 * factor)), changes, debounce)
    idle_group = f"Idle daemon, {idle['files']:,} watched files in {idle['dirs']:,} dirs"
    latency_group = (f"Change to snapshot, {latency['files']:,}-file tree, "
                     f"debounce {debounce}")
    return [
        BenchResult(group=idle_group, name="RSS, max over the idle window", unit="MB",
                    samples=[idle["rss_mib_max"] * 1.048576], goal=150.0,
                    goal_text="≤ 150 MB",
                    note=f"mean {idle['rss_mib_mean']} MiB over {idle['window_s']} s, after "
                         f"the start-up backup ({idle['startup_backup_s']} s)"),
        BenchResult(group=idle_group, name="CPU, share of one core over the idle window",
                    unit="%", samples=[idle["cpu_percent"]], goal=1.0, goal_text="≤ 1 %"),
        BenchResult(group=latency_group, name=f"p50 over {changes} changes", unit="s",
                    samples=[latency["p50_s"]]),
        BenchResult(group=latency_group, name=f"p95 over {changes} changes", unit="s",
                    samples=[latency["p95_s"]], goal=2.0 + 10.0,
                    goal_text="≤ quiet period + 10 s", note=f"max {latency['max_s']} s"),
    ]


def scrape(work_dir: Path) -> list[BenchResult]:
    """bench/scrape.py: /metrics scrape latency with 50 agencies × 3 sources and 200 backup runs
    each in state; steady scrapes, and scrapes with a new run recorded before each."""
    import urllib.request

    from bench import scrape as script
    from drbackup.metrics import serve_metrics

    agencies = max(5, int(50 * scale()))
    config, state = script.build(work_dir, agencies, 3, 200 if scale() >= 1 else 20)
    keys = [(a.id, s.id) for a in config.agencies for s in a.sources]
    server = serve_metrics(config, state, script._Live(keys))
    scrapes = 300 if scale() >= 1 else 30
    try:
        cold = script.timed_scrapes(server.url, 1)[0]
        with urllib.request.urlopen(server.url, timeout=30) as response:  # noqa: S310
            size = len(response.read())
        steady = script.timed_scrapes(server.url, scrapes)
        agency = config.agencies[0]

        def new_run() -> None:
            from drbackup.state import RunCounts

            run_id = state.start_run("backup", agency.id, source=agency.sources[0].id,
                                     store="local", trigger="bench")
            state.finish_run(run_id, "success", counts=RunCounts(bytes_added=1))

        busy = script.timed_scrapes(server.url, scrapes, new_run)
    finally:
        server.stop()
        state.close()
    group = f"/metrics scrape, {agencies} agencies × 3 sources, {size:,}-byte exposition"
    results = []
    for label, values in (("steady", steady), ("a new run recorded before each", busy)):
        p99 = script.percentile(values, 0.99)
        results.append(BenchResult(
            group=group, name=f"p99 scrape latency, {label}", unit="ms", samples=[p99],
            goal=50.0, goal_text="p99 ≤ 50 ms",
            note=f"p50 {script.percentile(values, 0.5):.1f} ms over {len(values)} scrapes"))
    results.append(BenchResult(group=group, name="first (cold) scrape", unit="ms",
                               samples=[cold]))
    return results
