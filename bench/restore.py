"""Restore wall time through `drbackup restore` vs raw `restic restore` of the same snapshot.

    .venv/bin/python -m bench.restore [--size-mb 1024] [--files 10000] [--runs 5]

Builds a tree of --files incompressible files totalling --size-mb, backs it up once into a local
repository (so the network does not blur drbackup's own overhead), then restores the latest
snapshot alternately with `drbackup restore` (CLI subprocess, default non-TTY progress) and
`restic restore` (same repository, password file and cache), deleting the target between runs.
Prints each run and the median ratio drbackup/restic (goal <= 1.03). The first drbackup restore
after the backup (its snapshot list cache cold: one more `restic snapshots`) is timed apart.
Results go to BENCHMARKS.md by hand, with the machine noted.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_tree(root: Path, size_mb: int, files: int) -> None:
    per_file = size_mb * (1 << 20) // files
    for index in range(files):
        folder = root / f"d{index // 500:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{index:05d}.bin").write_bytes(os.urandom(per_file))


def write_config(work: Path, data: Path, restic: str) -> Path:
    password = work / "password"
    password.write_text("bench-password-0f2c\n")
    password.chmod(0o600)
    config = work / "drbackup.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{work / "state"}"\ncache_dir = "{work / "cache"}"\n'
        f'restic = "{restic}"\nhostname = "bench"\n\n'
        f'[[agencies]]\nid = "bench"\npassword_file = "{password}"\n\n'
        f'[[agencies.sources]]\nid = "tree"\nkind = "directory"\npaths = ["{data}"]\n'
        f"watch = false\n")
    return config


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    restic = shutil.which("restic") or "restic"
    work = Path(tempfile.mkdtemp(prefix="drbackup-bench-restore-", dir=args.workdir))
    try:
        data = work / "data"
        print(f"building {args.files} files, {args.size_mb} MiB in {data} ...", flush=True)
        make_tree(data, args.size_mb, args.files)
        config = write_config(work, data, restic)
        drbackup = [sys.executable, "-m", "drbackup", "--config", str(config)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("RESTIC_")}
        subprocess.run([*drbackup, "repo", "init"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run([*drbackup, "backup", "--agency", "bench", "--no-progress"], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        restic_env = {**env, "RESTIC_REPOSITORY": str(work / "state" / "repos" / "bench"),
                      "RESTIC_PASSWORD_FILE": str(work / "password"),
                      "RESTIC_CACHE_DIR": str(work / "cache")}
        target = work / "target"
        # The first drbackup restore after a backup finds the snapshot with `restic snapshots`
        # (its cached snapshot list no longer matches the repository): timed on its own.
        shutil.rmtree(target, ignore_errors=True)
        os.sync()
        cold = timed([*drbackup, "restore", "--agency", "bench", "--source", "tree",
                      "--target", str(target)], env)
        print(f"cold     drbackup {cold:7.2f} s (first restore after the backup)", flush=True)
        load_start = os.getloadavg()[0]
        ours: list[float] = []
        raw: list[float] = []
        for run in range(args.runs):
            pair = [("drbackup", [*drbackup, "restore", "--agency", "bench", "--source", "tree",
                                  "--target", str(target)], env, ours),
                    ("restic", [restic, "restore", "latest", "--target", str(target)],
                     restic_env, raw)]
            if run % 2:
                pair.reverse()  # interleave and alternate who goes first
            for name, argv, run_env, sink in pair:
                shutil.rmtree(target, ignore_errors=True)
                # Write back what the previous run left dirty (1 GiB of page cache), so the
                # kernel's writeback does not land on the next run.
                os.sync()
                seconds = timed(argv, run_env)
                sink.append(seconds)
                print(f"run {run + 1} {name:8s} {seconds:7.2f} s", flush=True)
        ratio = statistics.median(ours) / statistics.median(raw)
        ratios = [a / b for a, b in zip(ours, raw, strict=True)]
        print(f"machine: {platform.platform()}, {os.cpu_count()} cpus, "
              f"load average {load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end")
        print(f"median drbackup {statistics.median(ours):.2f} s, restic "
              f"{statistics.median(raw):.2f} s, ratio of medians {ratio:.3f}, "
              f"median of pair ratios {statistics.median(ratios):.3f} (goal <= 1.03)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
