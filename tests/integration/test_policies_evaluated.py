"""The shipped policies (config/policies/) evaluated against every request restic and drbackup
really send (#14 hole 7).

moto enforces IAM Allow/Deny for most S3 actions (tests/integration/test_policies_iam.py) but
ignores the Deny on `PutObjectRetention`, `PutObjectLegalHold` and a `PutObject` carrying lock
headers, so "the daily key cannot shorten retention" cannot be shown by asking it. Here moto's
recorder keeps every request of a day of daily work (init, backups, snapshots, check with
data, drill, restore, ls, find, unlock, store check, recovery kit upload) and of maintenance
(bootstrap, forget, prune); tests/support/iampolicy.py maps each request to the IAM actions AWS
authorizes for it and evaluates the shipped JSON:

- every action of every daily-key request is allowed by daily-work.json, every action of every
  maintenance-key request by maintenance.json — and every action a policy allows is used;
- the attacks a stolen daily key would send (shorten a retention, lift a legal hold, write an
  object with a short lock, delete a version, bypass governance, delete repository files,
  loosen the bucket) are sent for real and each is explicitly denied by daily-work.json;
  the maintenance key cannot destroy versions or shorten retention either.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.support.iampolicy import (
    Decision,
    Policy,
    Request,
    as_text,
    decisions,
    read_recording,
    s3_actions,
)
from tests.support.offsite import POLICIES, runtime, small_tree, split_key_store
from tests.support.servers import IamS3
from tests.support.workspace import Workspace

_BY_KEY = tuple[list[Request], list[Request]]
NEVER_FOR_THE_DAILY_KEY = {
    "s3:PutObjectRetention", "s3:PutObjectLegalHold", "s3:BypassGovernanceRetention",
    "s3:DeleteObjectVersion", "s3:PutBucketVersioning", "s3:PutBucketObjectLockConfiguration",
    "s3:PutLifecycleConfiguration", "s3:PutBucketPolicy", "s3:DeleteBucket"}
# Allowed actions this day of work does not send, each with the work that does.
USED_ELSEWHERE = {
    ("maintenance", "s3:PutBucketVersioning"):
        "bootstrap of a bucket without Object Lock (a locked bucket is versioned from creation)",
    ("maintenance", "s3:ListBucketVersions"):
        "ops listing versions to undo a forget within lock_days (docs/offsite.md section 1)",
}


def _split(requests: list[Request], daily: str, maintenance: str) -> _BY_KEY:
    by_daily = [r for r in requests if r.access_key == daily]
    by_maintenance = [r for r in requests if r.access_key == maintenance]
    return by_daily, by_maintenance


def test_every_request_of_daily_work_and_maintenance_is_allowed_and_every_attack_denied(
        workspace: Workspace, recorded_iam_s3: IamS3, bucket: str, tmp_path: Path) -> None:
    s3 = recorded_iam_s3
    daily, maintenance = split_key_store(workspace, s3, bucket)
    workspace.add_agency("planning", store="offsite", retention={"keep_within": "2d"})
    data = small_tree(tmp_path / "data")
    workspace.add_directory_source("planning", "documents", [data])
    identity = tmp_path / "identity"

    # Maintenance: set the bucket up.
    workspace.cli("store", "bootstrap", "--store", "offsite", "--require-lock", check=True)
    # A day of daily work, every command with the daily key.
    workspace.cli("repo", "init", check=True)
    workspace.cli("backup", "--agency", "planning", check=True)
    (data / "file-000.txt").write_text("changed\n")
    workspace.cli("backup", "--agency", "planning", check=True)
    # An old snapshot of other data, for forget to remove and prune to delete packs of.
    rt = runtime(workspace)
    old = rt.restic.backup(rt.target(rt.config.agency("planning")),
                           [str(small_tree(tmp_path / "old", seed=7))], host="test-host",
                           tags=["agency=planning", "source=documents", "kind=directory"],
                           time=datetime.now(tz=UTC) - timedelta(days=10))
    rt.close()
    assert old.summary.snapshot_id
    for argv in (["snapshots", "--agency", "planning"],
                 ["verify", "--agency", "planning", "--read-data"],
                 ["restore", "--agency", "planning", "--source", "documents",
                  "--target", str(tmp_path / "restored")],
                 ["ls", "--agency", "planning", "--source", "documents"],
                 ["find", "--agency", "planning", "file-000*"],
                 ["unlock", "--agency", "planning"],
                 ["store", "check"],
                 ["recovery-kit", "keygen", "--out", str(identity)],
                 ["recovery-kit", "create", "--recipient", f"{identity}.pub",
                  "--out", str(tmp_path / "kit")]):
        result = workspace.cli(*argv)
        assert result.returncode == 0, f"{argv}: {result.stderr}"
    # Maintenance again: forget and prune.
    workspace.cli("forget", "--agency", "planning", check=True)
    workspace.cli("prune", "--agency", "planning", check=True)

    # What a thief of the daily key would send; moto accepts some of it (the gap), the policy
    # must not.
    thief = s3.client(daily)
    admin = s3.client()
    config_version = admin.list_object_versions(Bucket=bucket, Prefix="planning/config")[
        "Versions"][0]["VersionId"]
    soon = datetime.now(tz=UTC) + timedelta(minutes=1)
    attacks: list[Callable[[], object]] = [
        lambda: thief.put_object_retention(
            Bucket=bucket, Key="planning/config", VersionId=config_version,
            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": soon},
            BypassGovernanceRetention=True),
        lambda: thief.put_object_legal_hold(Bucket=bucket, Key="planning/config",
                                            LegalHold={"Status": "OFF"}),
        lambda: thief.put_object(Bucket=bucket, Key="planning/data/00/planted", Body=b"x",
                                 ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=soon),
        lambda: thief.put_object(Bucket=bucket, Key="planning/data/00/held", Body=b"x",
                                 ObjectLockLegalHoldStatus="OFF"),
        lambda: thief.delete_object(Bucket=bucket, Key="planning/config",
                                    VersionId=config_version, BypassGovernanceRetention=True),
        lambda: thief.delete_object(Bucket=bucket, Key="planning/config"),
        lambda: thief.delete_objects(Bucket=bucket, Delete={"Objects": [
            {"Key": "planning/config", "VersionId": config_version},
            {"Key": "planning/index/anything"}]}),
        lambda: thief.put_bucket_versioning(Bucket=bucket,
                                            VersioningConfiguration={"Status": "Suspended"}),
        lambda: thief.put_object_lock_configuration(
            Bucket=bucket, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"}),
        lambda: thief.delete_bucket_lifecycle(Bucket=bucket),
        lambda: thief.put_bucket_policy(Bucket=bucket, Policy="{}"),
        lambda: thief.delete_bucket(Bucket=bucket),
    ]
    record = s3.server.record
    assert record is not None
    recorded_before = len(read_recording(record))
    for attack in attacks:
        with contextlib.suppress(ClientError):  # moto refused it too; the policy decides below
            attack()
    requests = read_recording(record)
    work, attacking = requests[:recorded_before], requests[recorded_before:]

    daily_policy = Policy.load(POLICIES / "daily-work.json", bucket)
    maintenance_policy = Policy.load(POLICIES / "maintenance.json", bucket)
    by_daily, by_maintenance = _split(work, daily.access_key_id, maintenance.access_key_id)
    assert len(by_daily) > 100 and len(by_maintenance) > 10  # the recording really has them

    for used_policy, used in ((daily_policy, by_daily), (maintenance_policy, by_maintenance)):
        rows = decisions(used_policy, used)
        refused = [row for row in rows if row[3] is not Decision.ALLOWED]
        assert not refused, f"{used_policy.name} refuses what drbackup needs:\n{as_text(refused)}"
        unused = {a for a in used_policy.allowed_actions() - {action for _, action, _, _ in rows}
                  if (used_policy.name, a) not in USED_ELSEWHERE}
        assert not unused, f"{used_policy.name} allows actions nothing uses: {sorted(unused)}"

    # Every attack request is attributed to the daily key and refused; whatever would loosen
    # a lock, destroy a version or change the bucket is refused by an explicit Deny, which no
    # Allow added later can override.
    attack_requests = [r for r in attacking if r.access_key == daily.access_key_id]
    assert len(attack_requests) == len(attacks)
    for request in attack_requests:
        rows = decisions(daily_policy, [request])
        assert not all(row[3] is Decision.ALLOWED for row in rows), as_text(rows)
        for row in rows:
            if row[1] in NEVER_FOR_THE_DAILY_KEY:
                assert row[3] is Decision.EXPLICIT_DENY, as_text([row])
    lock_requests = [r for r in attack_requests
                     if {"s3:PutObjectRetention", "s3:PutObjectLegalHold"}
                     & {a for a, _ in s3_actions(r)}]
    assert len(lock_requests) == 4  # the two direct calls and the two lock-header uploads

    # The maintenance key, for forget and prune, still cannot destroy or shorten.
    for action in ("s3:DeleteObjectVersion", "s3:BypassGovernanceRetention",
                   "s3:PutObjectRetention", "s3:PutObjectLegalHold"):
        decision = maintenance_policy.evaluate(action, f"arn:aws:s3:::{bucket}/planning/config")
        assert decision is not Decision.ALLOWED, action
    for action in ("s3:DeleteBucket", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"):
        assert maintenance_policy.evaluate(action, f"arn:aws:s3:::{bucket}") is (
            Decision.EXPLICIT_DENY), action


def test_the_evaluator_follows_aws_rules(tmp_path: Path) -> None:
    """Explicit Deny beats Allow; no match is an implicit deny; wildcards; unsupported policy
    elements and unknown requests are refused rather than guessed."""
    path = tmp_path / "p.json"
    path.write_text('{"Version": "2012-10-17", "Statement": ['
                    '{"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/*"},'
                    '{"Effect": "Deny", "Action": ["s3:getobject"], '
                    '"Resource": "arn:aws:s3:::b/secret/*"}]}')
    p = Policy.load(path, "b")
    assert p.evaluate("s3:GetObjectRetention", "arn:aws:s3:::b/x") is Decision.ALLOWED
    assert p.evaluate("s3:GetObject", "arn:aws:s3:::b/secret/k") is Decision.EXPLICIT_DENY
    assert p.evaluate("s3:PutObject", "arn:aws:s3:::b/x") is Decision.IMPLICIT_DENY
    assert p.evaluate("s3:GetObject", "arn:aws:s3:::B/x") is Decision.IMPLICIT_DENY
    path.write_text('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
                    '"NotAction": "s3:DeleteObject", "Resource": "*"}]}')
    with pytest.raises(ValueError, match="NotAction"):
        Policy.load(path, "b")
    put = Request("PUT", "/b/k", {}, {"x-amz-object-lock-mode": "GOVERNANCE"}, b"")
    assert s3_actions(put) == [("s3:PutObject", "arn:aws:s3:::b/k"),
                               ("s3:PutObjectRetention", "arn:aws:s3:::b/k")]
    with pytest.raises(ValueError, match="unknown"):
        s3_actions(Request("PUT", "/b", {"replication": [""]}, {}, b""))
