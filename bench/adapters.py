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
