"""Verification acceptance against the real S3 server: a good repository passes and its signed
reports land in the bucket; after bytes of one pack object are flipped in the bucket, a full
data check fails at once, the rotating subset check finds it within N runs, and the file drill
fails naming the damaged file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from drbackup.errors import ExitCode
from tests.support.servers import MotoServer
from tests.support.workspace import Workspace

SUBSETS = 3


def _verify(workspace: Workspace, *args: str) -> tuple[int, dict[str, Any]]:
    result = workspace.cli("verify", "--agency", "planning", "--json", *args)
    assert result.stdout.strip(), result.stderr
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout)


def test_corrupted_pack_is_found_by_checks_and_the_drill(
        workspace: Workspace, s3_server: MotoServer, bucket: str, tmp_path: Path) -> None:
    data = tmp_path / "agency-data"
    data.mkdir()
    names = [f"record-{index}.bin" for index in range(4)]
    for name in names:
        (data / name).write_bytes(os.urandom(150_000))  # random: restic cannot compress it
    workspace.add_s3_store("offsite", s3_server, bucket)
    workspace.add_agency("planning", store="offsite", verify={"check_subsets": SUBSETS})
    workspace.add_directory_source("planning", "documents", [data])
    workspace.cli("repo", "init", check=True)
    workspace.cli("backup", "--agency", "planning", check=True)

    code, good = _verify(workspace, "--read-data")
    assert code == 0, good
    assert good["verdict"] == "pass"
    assert good["checks"][0]["kind"] == "read-data"
    assert good["drills"][0]["counts"]["ok"] == len(names)
    client = s3_server.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    reports = [k for k in keys if k.startswith("planning/reports/")]
    assert {Path(good["checks"][0]["report"]).name, Path(good["drills"][0]["report"]).name} \
        <= {Path(k).name for k in reports}
    public_key = tmp_path / "daemon.pub.pem"
    public_key.write_bytes(client.get_object(
        Bucket=bucket, Key="planning/reports/ed25519.pub.pem")["Body"].read())
    uploaded = tmp_path / "uploaded-report.json"
    uploaded.write_bytes(client.get_object(
        Bucket=bucket, Key=good["drills"][0]["report_key"])["Body"].read())
    assert workspace.cli("verify-report", str(uploaded), "--public-key",
                         str(public_key)).returncode == 0

    # Flip bytes in the middle of the largest pack: the data pack holding the files.
    packs = client.list_objects_v2(Bucket=bucket, Prefix="planning/data/")["Contents"]
    largest = max(packs, key=lambda o: o["Size"])
    body = bytearray(client.get_object(Bucket=bucket, Key=largest["Key"])["Body"].read())
    middle = len(body) // 2
    for offset in range(middle, middle + 64):
        body[offset] ^= 0xFF
    client.put_object(Bucket=bucket, Key=largest["Key"], Body=bytes(body))

    # A full data check finds it immediately.
    code, full = _verify(workspace, "--kind", "check", "--read-data")
    assert code == ExitCode.VERIFY_FAILED
    assert full["checks"][0]["verdict"] == "fail"
    assert full["checks"][0]["num_errors"] >= 1
    # The rotating subset check finds it within N runs.
    verdicts = []
    for _ in range(SUBSETS):
        _, rotated = _verify(workspace, "--kind", "check")
        verdicts.append((rotated["checks"][0]["subset"], rotated["checks"][0]["verdict"]))
    assert [s for s, _ in verdicts] == [f"{k}/{SUBSETS}" for k in range(1, SUBSETS + 1)]
    assert [v for _, v in verdicts].count("fail") == 1, verdicts

    # The file drill restores everything, and fails naming the damaged file.
    code, drilled = _verify(workspace, "--kind", "files")
    assert code == ExitCode.VERIFY_FAILED
    [drill] = drilled["drills"]
    assert drill["verdict"] == "fail"
    damaged = [name for name in names if any(name in r for r in drill["reasons"])]
    assert len(damaged) == 1, drill["reasons"]
    assert drill["counts"]["ok"] == len(names) - 1
    scratch = workspace.state_dir / "scratch"
    assert not scratch.exists() or list(scratch.iterdir()) == []
    # The failed drill's evidence is signed and uploaded too.
    evidence = json.loads(Path(drill["report"]).read_text())
    assert evidence["report"]["verdict"] == "fail"
    assert drill["report_key"].startswith("planning/reports/")
