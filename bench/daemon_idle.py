"""Daemon benchmark (issue 3): an idle daemon watching a large tree — its RSS and CPU% over a
window — and change-to-snapshot latency (p50/p95) for single-file changes in a smaller tree.

    python -m bench.daemon_idle        # 100,000 files / 10,000 dirs, 60 s idle, 20 changes
    python -m bench.daemon_idle --idle-files 10000 --idle-dirs 1000 --idle-seconds 20 --changes 5

Uses the embedded local store in a temporary directory, the real daemon (`python -m drbackup run`)
and real restic. Results print as Markdown rows for BENCHMARKS.md and are saved as JSON under
bench/results/. Nothing is asserted: these are measurements.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
RESULTS = Path(__file__).resolve().parent / "results"


def make_tree(root: Path, files: int, dirs: int) -> None:
    per_dir = max(1, files // max(1, dirs))
    made = 0
    for d in range(dirs):
        directory = root / f"d{d // 100:03}" / f"d{d:05}"
        directory.mkdir(parents=True, exist_ok=True)
        for f in range(per_dir):
            if made >= files:
                return
            (directory / f"f{f:04}.txt").write_bytes(f"{d}/{f}\n".encode() * 4)
            made += 1


def write_config(work: Path, data: Path, debounce: str) -> Path:
    secrets_dir = work / "secrets"
    secrets_dir.mkdir(mode=0o700, exist_ok=True)
    password = secrets_dir / "bench.password"
    password.write_text(secrets.token_hex(16))
    password.chmod(0o600)
    config = work / "drbackup.toml"
    config.write_text(f"""
[daemon]
state_dir = "{work / 'state'}"
cache_dir = "{work / 'cache'}"
metrics_listen = "127.0.0.1:0"

[[agencies]]
id = "bench"
password_file = "{password}"
rpo = "24h"

  [[agencies.sources]]
  id = "tree"
  kind = "directory"
  paths = ["{data}"]
  debounce = "{debounce}"
""")
    return config


def successes(state_db: Path) -> list[tuple[float, float]]:
    if not state_db.exists():
        return []
    conn = sqlite3.connect(f"file:{state_db}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute("SELECT started_at, finished_at FROM runs WHERE job = 'backup' "
                            "AND result IN ('success', 'warning') ORDER BY id").fetchall()
    except sqlite3.OperationalError:
        return []  # the daemon has not created its tables yet
    finally:
        conn.close()
    return [(float(a), float(b)) for a, b in rows]


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "drbackup", "--config", str(config), "--log-format", "json",
         "run"], stdout=log.open("wb"), stderr=subprocess.STDOUT)


def wait_successes(state_db: Path, count: int, timeout: float) -> list[tuple[float, float]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = successes(state_db)
        if len(done) >= count:
            return done
        time.sleep(0.1)
    raise TimeoutError(f"fewer than {count} backups after {timeout}s")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(120)


def idle_phase(work: Path, files: int, dirs: int, seconds: float) -> dict[str, Any]:
    data = work / "idle-tree"
    started = time.monotonic()
    make_tree(data, files, dirs)
    created = time.monotonic() - started
    (work / "idle").mkdir()
    config = write_config(work / "idle", data, "10s")
    process = start_daemon(config, work / "idle" / "daemon.log")
    try:
        t0 = time.monotonic()
        wait_successes(work / "idle" / "state" / "state.db", 1, 3600)
        first_backup = time.monotonic() - t0
        time.sleep(2)  # let the watcher settle after the start-up backup
        cpu_start, wall_start = cpu_seconds(process.pid), time.monotonic()
        rss_samples = []
        while time.monotonic() - wall_start < seconds:
            rss_samples.append(rss_mib(process.pid))
            time.sleep(1)
        cpu_used = cpu_seconds(process.pid) - cpu_start
        wall = time.monotonic() - wall_start
    finally:
        stop(process)
    return {"files": files, "dirs": dirs, "tree_create_s": round(created, 1),
            "startup_backup_s": round(first_backup, 1), "window_s": round(wall, 1),
            "rss_mib_max": round(max(rss_samples), 1),
            "rss_mib_mean": round(statistics.fmean(rss_samples), 1),
            "cpu_percent": round(100 * cpu_used / wall, 3)}


def latency_phase(work: Path, files: int, changes: int, debounce: str) -> dict[str, Any]:
    data = work / "latency-tree"
    make_tree(data, files, max(1, files // 10))
    (work / "latency").mkdir()
    config = write_config(work / "latency", data, debounce)
    state_db = work / "latency" / "state" / "state.db"
    process = start_daemon(config, work / "latency" / "daemon.log")
    latencies = []
    try:
        wait_successes(state_db, 1, 1800)
        time.sleep(1)
        for i in range(changes):
            before = len(successes(state_db))
            written = time.time()
            (data / f"change-{i:03}.txt").write_text(f"change {i} at {written}\n")
            done = wait_successes(state_db, before + 1, 600)
            latencies.append(done[before][1] - written)
            time.sleep(0.5)
    finally:
        stop(process)
    latencies.sort()
    p95_index = max(0, min(len(latencies) - 1, round(0.95 * len(latencies)) - 1))
    return {"files": files, "changes": changes, "debounce": debounce,
            "p50_s": round(statistics.median(latencies), 2),
            "p95_s": round(latencies[p95_index], 2),
            "max_s": round(latencies[-1], 2)}


def machine() -> str:
    cpus = os.cpu_count()
    try:
        model = next(line.split(":", 1)[1].strip() for line in
                     Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    mem = Path("/proc/meminfo").read_text().split()[1]
    return f"{cpus} CPU ({model}), {int(mem) // 1024 // 1024} GiB RAM, {platform.platform()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--idle-files", type=int, default=100_000)
    parser.add_argument("--idle-dirs", type=int, default=10_000)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--latency-files", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--debounce", default="2s")
    parser.add_argument("--skip-idle", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"machine": machine(), "when": time.strftime("%Y-%m-%d %H:%M %Z")}
    with tempfile.TemporaryDirectory(prefix="drbackup-bench-") as tmp:
        work = Path(tmp)
        if not args.skip_idle:
            result["idle"] = idle_phase(work, args.idle_files, args.idle_dirs, args.idle_seconds)
        if not args.skip_latency:
            result["latency"] = latency_phase(work, args.latency_files, args.changes,
                                              args.debounce)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"daemon-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    if "idle" in result:
        i = result["idle"]
        print(f"| idle daemon, {i['files']:,} files / {i['dirs']:,} dirs, {i['window_s']:.0f} s "
              f"| RSS max {i['rss_mib_max']} MiB (mean {i['rss_mib_mean']}) "
              f"| CPU {i['cpu_percent']} % |")
    if "latency" in result:
        lat = result["latency"]
        print(f"| change → snapshot, {lat['files']:,}-file tree, {lat['changes']} changes, "
              f"debounce {lat['debounce']} | p50 {lat['p50_s']} s | p95 {lat['p95_s']} s |")
    print(f"machine: {result['machine']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
