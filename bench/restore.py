"""Restore wall time through `drbackup restore` vs raw `restic restore` of the same snapshot.

    .venv/bin/python -m bench.restore [--size-mb 1024] [--files 10000] [--runs 7]
                                      [--store local,s3] [--workdir DIR]

Builds a tree of --files incompressible files totalling --size-mb and, per store (a local
repository directory, and a bucket on the moto S3 server: the offsite path drbackup exists for),
backs it up once, then restores the latest snapshot alternately with `drbackup restore` (CLI
subprocess, default non-TTY progress) and `restic restore latest` (same repository, password
file and cache), who goes first alternating per pair, the target deleted, dirty pages written
back and (as root) the page cache dropped before every run, so each run starts as cold as a
restore on a freshly booted host and no run inherits the previous one's writeback.

drbackup runs restic through a wrapper that stamps when restic starts and ends, which splits
drbackup's wall time into its own fixed cost (before restic starts, after it ends) and restic's.
The first drbackup restore after the backup (its cached snapshot list no longer matches the
repository: one more `restic snapshots`) is timed apart. Prints each run, the medians, the ratio
(goal <= 1.03) and the fixed cost. Results go to BENCHMARKS.md by hand, with the machine noted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.servers import TEST_ACCESS_KEY, TEST_SECRET_KEY, MotoServer

AGENCY = "bench"


def make_tree(root: Path, size_mb: int, files: int) -> None:
    per_file = size_mb * (1 << 20) // files
    for index in range(files):
        folder = root / f"d{index // 500:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{index:05d}.bin").write_bytes(os.urandom(per_file))


def write_config(work: Path, data: Path, restic: str, store: str = "") -> Path:
    """A config for one agency with one directory source; `store` is extra TOML (a [stores.X]
    table and the agency's `store = "X"` line) or "" for the embedded local store."""
    password = work / "password"
    password.write_text("bench-password-0f2c\n")
    password.chmod(0o600)
    config = work / "drbackup.toml"
    stores, agency_store = store.split("\n--\n") if store else ("", "")
    config.write_text(
        f'[daemon]\nstate_dir = "{work / "state"}"\ncache_dir = "{work / "cache"}"\n'
        f'restic = "{restic}"\nhostname = "bench"\n\n{stores}\n'
        f'[[agencies]]\nid = "{AGENCY}"\npassword_file = "{password}"\n{agency_store}\n\n'
        f'[[agencies.sources]]\nid = "tree"\nkind = "directory"\npaths = ["{data}"]\n'
        f"watch = false\n")
    return config


def stamping_restic(folder: Path, real: str, log: Path) -> Path:
    """A restic that notes when it starts and ends (wall clock), around the real one."""
    wrapper = folder / "restic-stamped"
    wrapper.write_text(f'#!/bin/sh\necho "start $(date +%s.%N)" >> "{log}"\n"{real}" "$@"\n'
                       f'code=$?\necho "end $(date +%s.%N)" >> "{log}"\nexit $code\n')
    wrapper.chmod(0o755)
    return wrapper


def settle() -> None:
    """Write back dirty pages and, where allowed, drop the page cache."""
    os.sync()
    with contextlib.suppress(OSError):
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def can_drop_caches() -> bool:
    return os.access("/proc/sys/vm/drop_caches", os.W_OK)


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.time()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.time() - started


@dataclass
class Figures:
    store: str
    cold: float = 0.0
    ours: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    before_restic: list[float] = field(default_factory=list)
    after_restic: list[float] = field(default_factory=list)
    load: tuple[float, float] = (0.0, 0.0)

    def report(self) -> str:
        ours, raw = statistics.median(self.ours), statistics.median(self.raw)
        pairs = [a / b for a, b in zip(self.ours, self.raw, strict=True)]
        fixed = statistics.median(self.before_restic) + statistics.median(self.after_restic)
        return (f"[{self.store}] median drbackup {ours:.2f} s (min {min(self.ours):.2f}, max "
                f"{max(self.ours):.2f}), restic {raw:.2f} s (min {min(self.raw):.2f}, max "
                f"{max(self.raw):.2f}), ratio of medians {ours / raw:.3f}, median of pair "
                f"ratios {statistics.median(pairs):.3f} (goal <= 1.03); drbackup's own fixed "
                f"cost: {statistics.median(self.before_restic):.3f} s before restic starts + "
                f"{statistics.median(self.after_restic):.3f} s after it ends = {fixed:.3f} s "
                f"({fixed / raw:.1%} of restic's median); first restore after the backup "
                f"{self.cold:.2f} s; load average {self.load[0]:.1f} at start, "
                f"{self.load[1]:.1f} at end")


@contextlib.contextmanager
def store_setup(kind: str, work: Path) -> Iterator[tuple[str, dict[str, str], str]]:
    """(extra config TOML, restic env for the backend, restic repository) for the store."""
    if kind == "local":
        yield "", {}, str(work / "state" / "repos" / AGENCY)
        return
    server = MotoServer(work / "moto")
    server.start()
    try:
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        credentials = work / "s3.credentials"
        credentials.write_text(f"[default]\naws_access_key_id = {TEST_ACCESS_KEY}\n"
                               f"aws_secret_access_key = {TEST_SECRET_KEY}\n")
        credentials.chmod(0o600)
        toml = (f'[stores.offsite]\nurl = "{server.url(bucket)}"\n'
                f'credentials_file = "{credentials}"\n--\nstore = "offsite"')
        env = {"AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": TEST_SECRET_KEY}
        yield toml, env, f"{server.url(bucket)}/{AGENCY}"
    finally:
        server.stop()


def measure(kind: str, work: Path, data: Path, runs: int) -> Figures:
    restic = shutil.which("restic") or "restic"
    stamps = work / "stamps.log"
    figures = Figures(kind)
    with store_setup(kind, work) as (store_toml, backend_env, repository):
        config = write_config(work, data, str(stamping_restic(work, restic, stamps)), store_toml)
        drbackup = [sys.executable, "-m", "drbackup", "--config", str(config)]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RESTIC_", "AWS_"))}
        subprocess.run([*drbackup, "repo", "init"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run([*drbackup, "backup", "--agency", AGENCY, "--no-progress"], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        restic_env = {**env, **backend_env, "RESTIC_REPOSITORY": repository,
                      "RESTIC_PASSWORD_FILE": str(work / "password"),
                      "RESTIC_CACHE_DIR": str(work / "cache")}
        target = work / "target"
        ours_argv = [*drbackup, "restore", "--agency", AGENCY, "--source", "tree", "--target",
                     str(target)]
        shutil.rmtree(target, ignore_errors=True)
        settle()
        figures.cold = timed(ours_argv, env)
        print(f"[{kind}] cold drbackup {figures.cold:7.2f} s (first restore after the backup)",
              flush=True)
        load_start = os.getloadavg()[0]
        for run in range(runs):
            pair = [("drbackup", ours_argv, env, figures.ours),
                    ("restic", [restic, "restore", "latest", "--target", str(target)],
                     restic_env, figures.raw)]
            if run % 2:
                pair.reverse()  # interleave and alternate who goes first
            for name, argv, run_env, sink in pair:
                shutil.rmtree(target, ignore_errors=True)
                settle()
                stamps.write_text("")
                started = time.time()
                seconds = timed(argv, run_env)
                sink.append(seconds)
                if name == "drbackup":
                    marks = [line.split() for line in stamps.read_text().splitlines()]
                    begin = [float(m[1]) for m in marks if m[0] == "start"][-1]
                    end = [float(m[1]) for m in marks if m[0] == "end"][-1]
                    figures.before_restic.append(begin - started)
                    figures.after_restic.append(started + seconds - end)
                print(f"[{kind}] run {run + 1} {name:8s} {seconds:7.2f} s", flush=True)
        figures.load = (load_start, os.getloadavg()[0])
        shutil.rmtree(target, ignore_errors=True)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--store", default="local,s3", help="local, s3 or both (comma list)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="drbackup-bench-restore-", dir=args.workdir))
    try:
        data = root / "data"
        print(f"building {args.files} files, {args.size_mb} MiB in {data} ...", flush=True)
        make_tree(data, args.size_mb, args.files)
        results = []
        for kind in [k.strip() for k in args.store.split(",") if k.strip()]:
            work = root / kind
            work.mkdir()
            results.append(measure(kind, work, data, args.runs))
        print(f"machine: {platform.platform()}, {os.cpu_count()} cpus; page cache dropped "
              f"before every run: {'yes' if can_drop_caches() else 'no (not root)'}")
        for figures in results:
            print(figures.report())
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
