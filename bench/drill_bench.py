"""Restore-drill throughput: how fast a file drill restores and what full-restore estimate it
gives, on a local store and on the moto S3 server. Run: python -m bench.drill_bench [MiB]."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

from tests.support.servers import MotoServer
from tests.support.workspace import Workspace


def _measure(ws: Workspace) -> dict[str, float]:
    ws.cli("repo", "init", check=True)
    ws.cli("backup", "--agency", "bench", check=True)
    result = ws.cli("--json", "verify", "--agency", "bench", "--kind", "files", check=True)
    drill = json.loads(result.stdout)["drills"][0]
    return {"bytes": drill["bytes"], "seconds": drill["seconds"],
            "throughput_mib_s": drill["throughput"] / 2**20,
            "rto_estimate_seconds": drill["rto_estimate_seconds"]}


def main() -> int:
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    root = Path(tempfile.mkdtemp(prefix="drbackup-bench-"))
    moto = MotoServer(root / "moto")
    try:
        data = root / "data"
        data.mkdir()
        for index in range(mib // 4):
            (data / f"f{index}.bin").write_bytes(os.urandom(4 * 2**20))
        restic = shutil.which("restic") or "restic"
        local = Workspace(root / "local")
        local.config["daemon"]["restic"] = restic
        local.add_agency("bench", verify={"drill_max_bytes": f"{mib + 1}MiB"})
        local.add_directory_source("bench", "data", [data])
        print("local store:", _measure(local))
        moto.start()
        s3 = Workspace(root / "s3")
        s3.config["daemon"]["restic"] = restic
        s3.add_s3_store("offsite", moto, f"bench-{uuid.uuid4().hex[:8]}")
        s3.add_agency("bench", store="offsite", verify={"drill_max_bytes": f"{mib + 1}MiB"})
        s3.add_directory_source("bench", "data", [data])
        print("moto S3:", _measure(s3))
    finally:
        moto.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
