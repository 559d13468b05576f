"""`drbackup store bootstrap` against the real moto S3 server: settings read back with boto3,
locked versions cannot be deleted, overwrites keep the old version, and a bucket that cannot get
Object Lock is reported (and refused with --require-lock)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from botocore.exceptions import ClientError

from drbackup.errors import ExitCode
from drbackup.store import S3Credentials
from tests.support.offsite import REFUSED, error_code
from tests.support.servers import TEST_ACCESS_KEY, TEST_SECRET_KEY, MotoServer
from tests.support.workspace import Workspace


def test_bootstrap_sets_and_reads_back_versioning_lock_lifecycle(
        workspace: Workspace, s3_server: MotoServer, bucket: str) -> None:
    workspace.add_s3_store("offsite", s3_server, bucket, lock_mode="governance", lock_days=3)
    first = workspace.cli("--json", "store", "bootstrap", "--store", "offsite", "--require-lock")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["bucket_created"] is True
    assert report["lock_mode"] == "governance" and report["lock_days"] == 3
    assert report["lifecycle_noncurrent_days"] == 3 and report["public_access_blocked"] is True

    # Read back independently with boto3.
    s3 = s3_server.client()
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    retention = lock["Rule"]["DefaultRetention"]
    assert (retention["Mode"], retention["Days"]) == ("GOVERNANCE", 3)
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    ours = [r for r in rules if r["ID"] == "drbackup-expire-noncurrent"]
    assert ours and ours[0]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 3
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())

    # Running it again changes nothing and still passes.
    again = workspace.cli("--json", "store", "bootstrap", "--store", "offsite", "--require-lock")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["bucket_created"] is False
    health = workspace.cli("--json", "store", "check", "--store", "offsite", check=True)
    [record] = json.loads(health.stdout)
    assert record["up"] is True and record["latency_seconds"] > 0

    # Overwriting an object leaves the old version retrievable...
    daily = S3Credentials(TEST_ACCESS_KEY, TEST_SECRET_KEY)
    client = s3_server.client(daily)
    first_put = client.put_object(Bucket=bucket, Key="probe/object", Body=b"version one")
    client.put_object(Bucket=bucket, Key="probe/object", Body=b"version two")
    old = client.get_object(Bucket=bucket, Key="probe/object", VersionId=first_put["VersionId"])
    assert old["Body"].read() == b"version one"
    assert client.get_object(Bucket=bucket, Key="probe/object")["Body"].read() == b"version two"
    # ...and deleting a locked version is refused by the server (default retention applies).
    with pytest.raises(ClientError) as refused:
        client.delete_object(Bucket=bucket, Key="probe/object", VersionId=first_put["VersionId"])
    assert error_code(refused.value) in REFUSED
    # A plain delete only adds a delete marker: the data is still there.
    client.delete_object(Bucket=bucket, Key="probe/object")
    old = client.get_object(Bucket=bucket, Key="probe/object", VersionId=first_put["VersionId"])
    assert old["Body"].read() == b"version one"


def test_bucket_without_object_lock_is_reported_and_refused_with_require_lock(
        workspace: Workspace, s3_server: MotoServer, bucket: str) -> None:
    # A pre-existing bucket with data, created without Object Lock: many servers (moto among
    # them) cannot add Object Lock to it afterwards.
    s3 = s3_server.client()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="existing", Body=b"data")
    workspace.add_s3_store("offsite", s3_server, bucket, lock_mode="compliance", lock_days=7)

    lenient = workspace.cli("store", "bootstrap", "--store", "offsite")
    assert lenient.returncode == 0, lenient.stderr
    assert "object_lock" in lenient.stdout and "missing" in lenient.stdout
    assert "you give up: object versions are protected by IAM policy alone" in lenient.stdout
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"

    strict = workspace.cli("store", "bootstrap", "--store", "offsite", "--require-lock")
    assert strict.returncode == ExitCode.STORE_ACCESS
    error_lines = strict.stderr.strip().splitlines()
    assert len(error_lines) == 1 and "lacks Object Lock" in error_lines[0]
    assert "Traceback" not in strict.stderr


def test_require_lock_without_lock_mode_is_a_config_error(
        workspace: Workspace, s3_server: MotoServer, bucket: str) -> None:
    workspace.add_s3_store("offsite", s3_server, bucket)
    result = workspace.cli("store", "bootstrap", "--store", "offsite", "--require-lock")
    assert result.returncode == ExitCode.CONFIG
    assert "sets no lock_mode" in result.stderr
    # The bucket was never created: `store check` reports the store down, with the code.
    health = workspace.cli("--json", "store", "check")
    assert health.returncode == ExitCode.STORE_ACCESS
    rows = {r["store"]: r for r in json.loads(health.stdout)}
    assert rows["offsite"]["up"] is False and "does not exist" in rows["offsite"]["error"]


def test_compliance_retention_cannot_be_bypassed_and_the_moto_shortening_gap(
        workspace: Workspace, s3_server: MotoServer, bucket: str) -> None:
    workspace.add_s3_store("offsite", s3_server, bucket, lock_mode="compliance", lock_days=2)
    workspace.cli("store", "bootstrap", "--store", "offsite", "--require-lock", check=True)
    s3 = s3_server.client()
    put = s3.put_object(Bucket=bucket, Key="locked", Body=b"keep me")
    head = s3.head_object(Bucket=bucket, Key="locked", VersionId=put["VersionId"])
    assert head["ObjectLockMode"] == "COMPLIANCE"  # the bucket's default retention applied
    # COMPLIANCE: even a bypass request cannot delete the locked version.
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=bucket, Key="locked", VersionId=put["VersionId"],
                         BypassGovernanceRetention=True)
    assert error_code(refused.value) in REFUSED
    # AWS refuses to shorten a COMPLIANCE retention; moto 5.2.5 accepts it. This is a gap of
    # the test server, stated in README.md ("Known gaps of the test S3 server"), not hidden.
    try:
        s3.put_object_retention(Bucket=bucket, Key="locked", VersionId=put["VersionId"],
                                Retention={"Mode": "COMPLIANCE",
                                           "RetainUntilDate": head["ObjectLockRetainUntilDate"]
                                           - timedelta(days=1)})
    except ClientError as exc:
        assert error_code(exc) in REFUSED | {"InvalidRequest"}
    else:
        pytest.xfail("moto gap: it accepts shortening a COMPLIANCE retention (AWS refuses it)")
