"""Foundation acceptance: a mixed tree goes to the real S3 server through real restic and comes
back identical; an unchanged second backup adds almost nothing."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.servers import MotoServer
from tests.support.trees import make_mixed_tree, manifest
from tests.support.workspace import Workspace


def test_mixed_tree_round_trip_is_identical(workspace: Workspace, s3_server: MotoServer,
                                            bucket: str, tmp_path: Path) -> None:
    data = tmp_path / "agency-data"
    make_mixed_tree(data)
    workspace.add_s3_store("offsite", s3_server, bucket)
    workspace.add_agency("planning", store="offsite")
    workspace.add_directory_source("planning", "documents", [data])

    workspace.cli("repo", "init", check=True)
    first = workspace.cli("--json", "backup", "--agency", "planning", check=True)
    first_summary = json.loads(first.stdout)[0]["summary"]
    assert first_summary["snapshot_id"]
    assert first_summary["data_added"] > 50 * 1024 * 1024 * 0.9

    second = workspace.cli("--json", "backup", "--agency", "planning", check=True)
    second_summary = json.loads(second.stdout)[0]["summary"]
    assert second_summary["snapshot_id"] != first_summary["snapshot_id"]
    assert second_summary["data_added"] < first_summary["data_added"] * 0.01

    target = tmp_path / "restored"
    workspace.cli("restore", "--agency", "planning", "--source", "documents",
                  "--target", str(target), check=True)
    restored_root = target / data.relative_to("/")
    original = manifest(data)
    restored = manifest(restored_root)
    assert restored == original
    assert restored["link-to-leaf"].link == "nested/deeper/deepest/leaf.txt"
    assert restored["empty-file"].sha256 is not None
    assert restored["run.sh"].mode == 0o750
    assert len([e for e in original.values() if e.kind == "file"]) > 1000

    listing = workspace.cli("--json", "snapshots", "--agency", "planning", check=True)
    snapshots = json.loads(listing.stdout)
    assert [s["id"] for s in snapshots] == [first_summary["snapshot_id"],
                                            second_summary["snapshot_id"]]
    assert all("agency=planning" in s["tags"] and "source=documents" in s["tags"]
               for s in snapshots)
