"""Cross-credential replication throughput (#18): drbackup's `restic copy` whose destination is
written through restic's rclone backend (the source store has other keys than the replica) against a
plain same-key `restic copy` of the same snapshots between the same two moto servers, both sides
on restic's own S3 backend. Each repetition copies into a fresh replica repository created with
the primary's chunker parameters (not timed); the two ways alternate; medians. moto in its
default mode accepts any key, so the baseline can use one key on both servers: the figure is
what the rclone path costs, not what moto's IAM checks cost."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from bench.common import BenchResult, password_file, repeats, scale, timed
from drbackup.engine import RepoTarget, Restic, ResticSettings
from tests.support.servers import MotoServer

GROUP = "Replication across credentials"


def _target(server: MotoServer, bucket: str, key: str, secret: str, pw: Path) -> RepoTarget:
    return RepoTarget(f"{server.url(bucket)}/bench", pw, label=bucket, backend_env=(
        ("AWS_ACCESS_KEY_ID", key), ("AWS_SECRET_ACCESS_KEY", secret),
        ("AWS_DEFAULT_REGION", "us-east-1")))


def _bucket(server: MotoServer, name: str) -> None:
    server.client().create_bucket(Bucket=name)


def run(work_dir: Path) -> list[BenchResult]:
    mib = max(8, int(256 * scale()))
    restic_bin = shutil.which("restic") or "restic"
    restic = Restic(ResticSettings(binary=restic_bin, cache_dir=work_dir / "cache"))
    pw = password_file(work_dir)
    city, dr = MotoServer(work_dir / "city"), MotoServer(work_dir / "dr")
    city.start()
    dr.start()
    try:
        data = work_dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        for index in range(mib // 4):
            (data / f"f{index:04d}.bin").write_bytes(os.urandom(4 * 2**20))
        _bucket(city, "primary")
        primary = _target(city, "primary", "test", "test", pw)
        restic.init(primary)
        restic.backup(primary, [str(data)])
        (data / "more.bin").write_bytes(os.urandom(4 * 2**20))
        restic.backup(primary, [str(data)])
        ids = [s.id for s in restic.snapshots(primary)]
        primary_other = _target(city, "primary", "city-key", "city-secret", pw)
        cross: list[float] = []
        same: list[float] = []
        for index in range(repeats(5)):
            for kind in ("cross", "same"):
                bucket = f"replica-{kind}-{index}-{uuid.uuid4().hex[:6]}"
                _bucket(dr, bucket)
                if kind == "cross":
                    replica = _target(dr, bucket, "dr-key", "dr-secret", pw)
                    restic.init(replica, copy_chunker_params_from=primary_other)
                    cross.append(timed(functools.partial(restic.copy, primary_other, replica, ids)))
                else:
                    replica = _target(dr, bucket, "test", "test", pw)
                    restic.init(replica, copy_chunker_params_from=primary)
                    env = {"PATH": os.environ["PATH"], "HOME": str(work_dir),
                           "RESTIC_CACHE_DIR": str(work_dir / "cache"),
                           "RESTIC_REPOSITORY": replica.url,
                           "RESTIC_PASSWORD_FILE": str(pw),
                           "RESTIC_FROM_REPOSITORY": primary.url,
                           "RESTIC_FROM_PASSWORD_FILE": str(pw),
                           **dict(replica.backend_env)}
                    same.append(timed(functools.partial(
                        subprocess.run, [restic_bin, "copy", *ids], env=env, check=True,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
    finally:
        city.stop()
        dr.stop()
    total = mib + 4
    return [BenchResult(
        group=GROUP, name=f"copy of 2 snapshots, {total} MiB, S3 → S3 (two moto servers)",
        unit="s", samples=cross, baseline=same,
        baseline_name="same-key restic copy", goal=1.10, goal_text="ratio ≤ 1.10",
        note=f"throughput {total / sorted(cross)[len(cross) // 2]:.1f} MiB/s cross-credential "
             f"vs {total / sorted(same)[len(same) // 2]:.1f} MiB/s same-key; source read "
             "on restic's S3 backend, destination written through rclone (memfd config)")]
