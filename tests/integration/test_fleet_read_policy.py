"""config/policies/fleet-read.json evaluated against every request `fleet report` really sends
(moto's recorder, tests/support/iampolicy.py, as test_policies_evaluated.py does for the other
two keys): each is allowed, each allowed action is used, and what a holder of the reader key
could try beyond that (read a repository object or an evidence report, overwrite or delete a
summary, list versions) is refused by the policy and by the IAM-enforcing server. The
publishing host's requests need nothing beyond daily-work.json."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from botocore.exceptions import ClientError

from drbackup.config import load_config
from drbackup.fleet.trust import Keyring
from drbackup.jobs.fleet_publish import publish_fleet
from drbackup.jobs.fleet_report import build_fleet_report
from drbackup.jobs.runtime import Runtime
from drbackup.verify.evidence import KEY_DIR, PUBLIC_KEY_FILE
from tests.support.iampolicy import Decision, Policy, as_text, decisions, read_recording
from tests.support.offsite import POLICIES, REFUSED, error_code, policy
from tests.support.servers import IamS3
from tests.support.workspace import Workspace


def test_fleet_read_allows_the_report_and_nothing_more(recorded_iam_s3: IamS3, bucket: str,
                                                       tmp_path: Path) -> None:
    s3 = recorded_iam_s3
    s3.client().create_bucket(Bucket=bucket)
    s3.client().put_object(Bucket=bucket, Key="planning/config", Body=b"restic config")
    daily = s3.user(f"daily-{bucket}", policy("daily-work", bucket))
    reader = s3.user(f"fleet-{bucket}", policy("fleet-read", bucket))
    host = Workspace(tmp_path / "host")
    host.add_s3_store("city", s3.server, bucket, access_key=daily.access_key_id,
                      secret_key=daily.secret_access_key)
    for agency in ("planning", "water"):
        host.add_agency(agency, store="city")
    office = Workspace(tmp_path / "office")
    office.add_s3_store("city", s3.server, bucket, access_key=reader.access_key_id,
                        secret_key=reader.secret_access_key)
    rt = Runtime.create(load_config(host.write()))
    assert not publish_fleet(rt).failed
    rt.close()
    ring = tmp_path / "ring"
    ring.mkdir()
    (ring / "host.pem").write_bytes((host.state_dir / KEY_DIR / PUBLIC_KEY_FILE).read_bytes())
    rt = Runtime.create(load_config(office.write()))
    report, read = build_fleet_report(rt, Keyring.load(ring))
    rt.close()
    assert not read.unreadable and len(read.files) == 2
    assert {a.agency for a in report.agencies} == {"planning", "water"}

    thief = s3.client(reader)
    attacks: list[Callable[[], object]] = [
        lambda: thief.get_object(Bucket=bucket, Key="planning/config"),
        lambda: thief.get_object(Bucket=bucket, Key="planning/reports/x.json"),
        lambda: thief.put_object(Bucket=bucket, Key="planning/fleet/test-host.json", Body=b"{}"),
        lambda: thief.delete_object(Bucket=bucket, Key="planning/fleet/test-host.json"),
        lambda: thief.list_object_versions(Bucket=bucket),
    ]
    record = s3.server.record
    assert record is not None
    before = len(read_recording(record))
    for attack in attacks:  # the IAM-enforcing server refuses each
        try:
            attack()
        except ClientError as exc:
            assert error_code(exc) in REFUSED
        else:
            raise AssertionError("the IAM-enforcing server allowed an attack")
    requests = read_recording(record)
    work, attacking = requests[:before], requests[before:]

    fleet_read = Policy.load(POLICIES / "fleet-read.json", bucket)
    daily_work = Policy.load(POLICIES / "daily-work.json", bucket)
    by_reader = [r for r in work if r.access_key == reader.access_key_id]
    by_host = [r for r in work if r.access_key == daily.access_key_id]
    assert len(by_reader) == 1 + 2 + 2 and by_host  # agencies, two fleet/ listings, two GETs
    rows = decisions(fleet_read, by_reader)
    refused = [row for row in rows if row[3] is not Decision.ALLOWED]
    assert not refused, f"fleet-read refuses what fleet report needs:\n{as_text(refused)}"
    assert fleet_read.allowed_actions() == {action for _, action, _, _ in rows}
    host_rows = decisions(daily_work, by_host)
    assert all(row[3] is Decision.ALLOWED for row in host_rows), as_text(host_rows)
    attack_requests = [r for r in attacking if r.access_key == reader.access_key_id]
    assert len(attack_requests) == len(attacks)
    for request in attack_requests:
        rows = decisions(fleet_read, [request])
        assert not all(row[3] is Decision.ALLOWED for row in rows), as_text(rows)
