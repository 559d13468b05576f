"""The shipped least-privilege policies (config/policies/), enforced for real by moto's
IAM mode: the daily-work key backs up and removes restic's own lock files but cannot delete
repository objects or object versions; the maintenance key runs forget + prune.

Gap (moto): its IAM mode evaluates identity policies only as documented in
docs/offsite.md; a real AWS account also evaluates SCPs and bucket policies.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from drbackup.jobs.retention import RetentionRefused, run_retention
from drbackup.jobs.runtime import Runtime
from tests.support.offsite import (
    REFUSED,
    error_code,
    runtime,
    small_tree,
    split_key_store,
)
from tests.support.servers import IamS3
from tests.support.workspace import Workspace


def test_daily_key_backs_up_but_cannot_delete_maintenance_key_forgets_and_prunes(
        workspace: Workspace, iam_s3: IamS3, bucket: str, tmp_path: Path) -> None:
    daily, _ = split_key_store(workspace, iam_s3, bucket)
    workspace.add_agency("planning", store="offsite",
                         retention={"keep_within": "2d"})
    data = small_tree(tmp_path / "data")
    workspace.add_directory_source("planning", "documents", [data])

    # The maintenance key sets the bucket up (it may; the daily key may not).
    boot = workspace.cli("--json", "store", "bootstrap", "--store", "offsite", "--require-lock")
    assert boot.returncode == 0, boot.stderr
    assert {f["name"]: f["status"] for f in json.loads(boot.stdout)["features"]} == {
        "versioning": "ok", "object_lock": "ok", "lifecycle": "ok", "public_access_block": "ok"}

    # Daily work: init, two backups (the second reads the first as parent), all exit 0.
    workspace.cli("repo", "init", check=True)
    workspace.cli("backup", "--agency", "planning", check=True)
    (data / "file-000.txt").write_text("changed\n")
    workspace.cli("backup", "--agency", "planning", check=True)
    rt = runtime(workspace)
    agency = rt.config.agency("planning")
    # An old snapshot for retention to remove, made with the daily key too.
    old = rt.restic.backup(rt.target(agency), [str(data)], host="test-host",
                           tags=["agency=planning", "source=documents", "kind=directory"],
                           time=datetime.now(tz=UTC) - timedelta(days=10))
    assert old.summary.snapshot_id

    daily_s3 = iam_s3.client(daily)
    admin_s3 = iam_s3.client()

    def current(prefix: str) -> list[str]:
        page = admin_s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
        return [o["Key"] for o in page.get("Contents", [])]

    # restic removed its own lock files with the daily key: no current lock object remains.
    assert current("planning/locks/") == []

    # Deleting anything else with the daily key is refused by the server.
    victims = [current(f"planning/{kind}/")[0] for kind in ("data", "index", "snapshots", "keys")]
    victims.append("planning/config")
    for key in victims:
        with pytest.raises(ClientError) as refused:
            daily_s3.delete_object(Bucket=bucket, Key=key)
        assert error_code(refused.value) in REFUSED, key
    # ...as is deleting a locked version by id (policy and Object Lock both refuse it).
    version = admin_s3.list_object_versions(Bucket=bucket, Prefix="planning/config")[
        "Versions"][0]["VersionId"]
    with pytest.raises(ClientError) as refused:
        daily_s3.delete_object(Bucket=bucket, Key="planning/config", VersionId=version)
    assert error_code(refused.value) in REFUSED
    # ...and loosening the bucket's protection.
    with pytest.raises(ClientError) as refused:
        daily_s3.put_bucket_versioning(Bucket=bucket,
                                       VersioningConfiguration={"Status": "Suspended"})
    assert error_code(refused.value) in REFUSED
    assert set(victims) <= set(current("planning/"))

    # Forget with the daily key is refused by the server (the snapshot stays), and the error
    # says which key forget needs.
    store = rt.config.stores["offsite"].model_copy(update={"maintenance_credentials_file": None})
    daily_only = Runtime(config=rt.config.model_copy(
        update={"stores": {**rt.config.stores, "offsite": store}}), restic=rt.restic)
    with pytest.raises(RetentionRefused) as denied:
        run_retention(daily_only, agency)
    assert "refused to delete" in denied.value.one_line()
    assert "maintenance_credentials_file" in denied.value.one_line()
    assert old.summary.snapshot_id in {s.id for s in rt.restic.snapshots(rt.target(agency))}
    daily_only.close()

    # Maintenance key: forget (the 10-day-old snapshot goes) and prune succeed.
    forget = workspace.cli("--json", "forget", "--agency", "planning")
    assert forget.returncode == 0, forget.stderr
    assert json.loads(forget.stdout)["removed"] == [old.summary.snapshot_id]
    prune = workspace.cli("prune", "--agency", "planning")
    assert prune.returncode == 0, prune.stderr
    assert current("planning/locks/") == []
    assert len(rt.restic.snapshots(rt.target(agency))) == 2
    assert rt.restic.check(rt.target(agency)).ok

    # The forgotten snapshot's object still exists as a noncurrent version: a delete by the
    # maintenance key adds a delete marker, it does not destroy data inside the lock period.
    versions = admin_s3.list_object_versions(
        Bucket=bucket, Prefix=f"planning/snapshots/{old.summary.snapshot_id}")
    assert versions.get("Versions") and versions.get("DeleteMarkers")
    rt.close()
