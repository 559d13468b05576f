"""Verification acceptance on a local store (real restic): drills pass on a good repository and
say so in signed reports; a source changed after the snapshot is not a mismatch, but a snapshot
differing from an unchanged source file is; tampered reports fail verify-report; scratch space
is cleaned after a failure and after a kill; report --json validates against the schema."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema

from drbackup.errors import ExitCode
from tests.support.workspace import Workspace

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "report.schema.json"


def _data(root: Path) -> Path:
    data = root / "agency-data"
    (data / "sub").mkdir(parents=True)
    for index in range(6):  # text, not random bytes: those are what the guard calls encrypted
        text = "".join(f"minutes of meeting {index}, item {n}\n" for n in range(200))
        (data / f"doc-{index}.txt").write_text(text[:2000 + index * 500])
    (data / "sub" / "big.bin").write_bytes(os.urandom(200_000))
    (data / "sub" / "[odd] name*.txt").write_bytes(b"glob characters in the name\n")
    (data / "empty").write_bytes(b"")
    return data


def _setup(workspace: Workspace, tmp_path: Path, **verify: Any) -> Path:
    data = _data(tmp_path)
    workspace.add_agency("planning", rto="1h", verify=verify)
    workspace.add_directory_source("planning", "documents", [data])
    workspace.cli("repo", "init", check=True)
    workspace.cli("backup", "--agency", "planning", check=True)
    return data


def _verify(workspace: Workspace, *args: str) -> tuple[int, dict[str, Any]]:
    result = workspace.cli("verify", "--agency", "planning", "--json", *args)
    assert result.stdout.strip(), result.stderr
    return result.returncode, json.loads(result.stdout)


def test_good_repository_passes_with_signed_reports_and_a_valid_report(
        workspace: Workspace, tmp_path: Path) -> None:
    _setup(workspace, tmp_path)
    code, outcome = _verify(workspace)
    assert code == 0, outcome
    assert outcome["verdict"] == "pass"
    [check] = outcome["checks"]
    assert check["verdict"] == "pass" and check["kind"] == "read-data-subset"
    assert check["subset"] == "1/30"
    [drill] = outcome["drills"]
    assert drill["verdict"] == "pass", drill
    assert drill["counts"]["files_checked"] == drill["counts"]["files_in_snapshot"] == 9
    assert drill["counts"]["hash_compared"] == 9 and drill["counts"]["ok"] == 9
    assert drill["bytes"] > 200_000 and drill["seconds"] > 0 and drill["throughput"] > 0
    assert 0 < drill["rto_estimate_seconds"] <= 3600

    public_key = workspace.state_dir / "evidence" / "ed25519.pub.pem"
    key_file = workspace.state_dir / "evidence" / "ed25519.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    for path in (check["report"], drill["report"]):
        ok = workspace.cli("verify-report", path, "--public-key", str(public_key))
        assert ok.returncode == 0, ok.stderr
        assert "signature OK" in ok.stdout
    envelope = json.loads(Path(drill["report"]).read_text())
    report = envelope["report"]
    assert report["verdict"] == "pass" and report["snapshot"]["id"] == drill["snapshot_id"]
    assert any(f["sha256"] for f in report["files"])
    # The copy in the store (local: beside the repository data) is the same document.
    stored = Path(drill["report_key"])
    assert stored.parent == workspace.state_dir / "repos" / "planning" / "reports"
    assert json.loads(stored.read_text()) == envelope

    # A tampered report fails, with a clear error and the verify exit code.
    report["verdict"] = "pass"
    report["counts"]["mismatched"] = 0
    report["files"][0]["sha256"] = "0" * 64
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(envelope))
    bad = workspace.cli("verify-report", str(tampered), "--public-key", str(public_key))
    assert bad.returncode == ExitCode.VERIFY_FAILED
    assert "altered after it was signed" in bad.stderr
    assert "Traceback" not in bad.stderr
    # Without --public-key the configured daemon's key is used.
    assert workspace.cli("verify-report", drill["report"]).returncode == 0

    # The runs are recorded for metrics with the agreed details.
    result = workspace.cli("report", "--json", check=True)
    document = json.loads(result.stdout)
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    [agency] = document["agencies"]
    [source] = agency["sources"]
    assert source["last_good_drill"]["verdict"] == "pass"
    assert source["rpo"]["met"] is True and source["rto"]["met"] is True
    assert agency["last_check"]["verdict"] == "pass"
    assert agency["next_data_subset"] == "2/30"
    # One good backup in 7 days and a passed drill meet level 1; level 2 wants a backup on
    # each of the last 7 days.
    assert source["gbt_20988"]["level"] == 1
    human = workspace.cli("report", check=True)
    assert "planning" in human.stdout and "GB/T 20988 level met: 1" in human.stdout


def test_changed_source_is_not_a_mismatch_but_same_stat_other_content_is(
        workspace: Workspace, tmp_path: Path) -> None:
    data = _setup(workspace, tmp_path)
    # Modified after the snapshot (new content, new mtime): compared by size, not a mismatch.
    changed = data / "doc-1.txt"
    changed.write_bytes(b"edited after the backup")
    # Same size and mtime, other content: "unchanged" by our rule, so the restored bytes must
    # equal the source, and they do not: the drill must report a mismatch naming the file.
    forged = data / "doc-2.txt"
    info = forged.stat()
    forged.write_bytes(os.urandom(info.st_size))
    os.utime(forged, ns=(info.st_atime_ns, info.st_mtime_ns))

    code, outcome = _verify(workspace, "--kind", "files")
    assert code == ExitCode.VERIFY_FAILED
    [drill] = outcome["drills"]
    assert drill["verdict"] == "fail"
    assert drill["counts"]["mismatched"] == 1
    assert drill["counts"]["source_changed"] == 1
    assert any(str(forged) in reason for reason in drill["reasons"])
    assert not any(str(changed) in reason for reason in drill["reasons"])
    # Scratch space is gone after the failed drill.
    scratch = workspace.state_dir / "scratch"
    assert not scratch.exists() or list(scratch.iterdir()) == []
    assert any(r.startswith(f"mismatch: {forged}") for r in drill["reasons"])


def test_sampling_drill_and_leftover_scratch_cleaned(workspace: Workspace,
                                                     tmp_path: Path) -> None:
    _setup(workspace, tmp_path, drill_max_bytes="10KiB", drill_sample_files=3)
    leftover = workspace.state_dir / "scratch" / "drill-999"
    (leftover / "tmp" / "ro").mkdir(parents=True)
    (leftover / "tmp" / "ro" / "file").write_text("left by a killed drill")
    (leftover / "tmp" / "ro").chmod(0o500)

    code, outcome = _verify(workspace, "--kind", "files", "--source", "documents")
    assert code == 0, outcome
    assert not leftover.exists()
    [drill] = outcome["drills"]
    assert drill["counts"]["files_checked"] == 3
    report = json.loads(Path(drill["report"]).read_text())["report"]
    assert report["mode"] == "sample"
    # The largest file is always in the sample.
    assert any(f["path"].endswith("sub/big.bin") for f in report["files"])
    # The estimate scales the sample's throughput to the whole snapshot.
    assert drill["restore_size"] > drill["bytes"]
