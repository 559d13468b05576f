"""#20 acceptance: three hosts with four agencies each on one IAM-enforcing S3 server, real
restic; the hosts publish with `drbackup fleet publish` (their daily-work key), the city office
reads with `drbackup fleet report` holding only the fleet-read key and no agency (so no
repository password). One agency's drill fails (a damaged pack), one's backup is stale (RPO
breached), one host stopped publishing (its summaries expire), one expected agency no host
protects; then a summary altered in the bucket, one signed by a key outside the keyring and one
replayed from an older run: each shown as untrusted, none counted good."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from botocore.exceptions import ClientError

from drbackup.config import load_config
from drbackup.config.models import AgencyConfig
from drbackup.errors import ExitCode
from drbackup.fleet.trust import Keyring
from drbackup.jobs.backup import run_backup
from drbackup.jobs.drills import drill_source
from drbackup.jobs.fleet_publish import publish_fleet
from drbackup.jobs.fleet_report import build_fleet_report
from drbackup.jobs.repository import init_repository
from drbackup.jobs.runtime import Runtime
from drbackup.verify.evidence import PUBLIC_KEY_FILE
from tests.support.offsite import REFUSED, error_code, policy
from tests.support.servers import IamS3
from tests.support.workspace import Workspace

STORE = "city"
SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "fleet-report.schema.json"
# host -> agency -> what it does: "good" (backup + drill), "bad-drill" (drill of a damaged
# pack), "stale" (backed up, RPO 1s), "backup" (never drilled), "none" (never backed up)
HOSTS: dict[str, dict[str, str]] = {
    "host-a": {"planning": "good", "permits": "bad-drill", "water": "stale", "transit": "good"},
    "host-b": {"transit": "good", "health": "good", "schools": "backup", "fire": "none"},
    "host-c": {"parks": "none", "library": "none", "museum": "none", "archive": "none"},
}
STOPPED = "host-c"
STOPPED_VALID = 4.0  # seconds host-c's summaries are valid: it "stops" after publishing once


def _host(tmp_path: Path, name: str, iam_s3: IamS3, bucket: str, daily: Any) -> Workspace:
    ws = Workspace(tmp_path / name)
    ws.config["daemon"]["hostname"] = name
    ws.config["fleet"] = {"valid_for": f"{STOPPED_VALID:.0f}s" if name == STOPPED else "1h"}
    ws.add_s3_store(STORE, iam_s3.server, bucket, access_key=daily.access_key_id,
                    secret_key=daily.secret_access_key)
    for agency, role in HOSTS[name].items():
        extra: dict[str, Any] = {"rpo": "1s"} if role == "stale" else {}
        if agency == "transit":
            extra["maintenance_host"] = "host-a"
        ws.add_agency(agency, store=STORE, password=f"pw-{agency}", **extra)
        data = tmp_path / "data" / name / agency
        data.mkdir(parents=True)
        (data / "record.bin").write_bytes(os.urandom(60_000))  # random: its own data pack
        ws.add_directory_source(agency, f"docs-{name}", [data])
    ws.write()
    return ws


def _damage_largest_pack(client: Any, bucket: str, agency: str) -> None:
    packs = client.list_objects_v2(Bucket=bucket, Prefix=f"{agency}/data/")["Contents"]
    largest = max(packs, key=lambda o: o["Size"])
    body = bytearray(client.get_object(Bucket=bucket, Key=largest["Key"])["Body"].read())
    for offset in range(len(body) // 2, len(body) // 2 + 64):
        body[offset] ^= 0xFF
    client.put_object(Bucket=bucket, Key=largest["Key"], Body=bytes(body))


def _work(hosts: dict[str, Workspace], client: Any, bucket: str) -> float:
    """Each agency's real backups and drills, in process (restic and S3 are real), in three
    phases (init, backup, drill), the repositories of a phase side by side. Returns when the
    last backup ended."""
    runtimes = {name: Runtime.create(load_config(ws.config_path)) for name, ws in hosts.items()}
    for rt in runtimes.values():
        assert rt.state.schema_version > 0  # opened once, here: not raced by the threads
    jobs = [(rt, rt.config.agency(agency), role) for name, rt in runtimes.items()
            for agency, role in HOSTS[name].items() if role != "none"]

    def init(rt: Runtime, agency: AgencyConfig, role: str) -> None:
        if agency.maintenance_host in (None, rt.hostname):  # one host creates a shared repo
            init_repository(rt, agency)

    def backup(rt: Runtime, agency: AgencyConfig, role: str) -> None:
        run_backup(rt, agency, agency.sources[0])
        if role == "bad-drill":
            _damage_largest_pack(client, bucket, agency.id)

    def drill(rt: Runtime, agency: AgencyConfig, role: str) -> None:
        if role in ("good", "bad-drill"):
            outcome = drill_source(rt, agency, agency.sources[0])
            assert outcome.passed is (role == "good"), (agency.id, outcome.reasons)

    backed_up = 0.0
    try:
        with ThreadPoolExecutor(4) as pool:
            for phase in (init, backup, drill):
                for future in [pool.submit(phase, *job) for job in jobs]:
                    future.result()
                if phase is backup:
                    backed_up = time.time()
        return backed_up
    finally:
        for rt in runtimes.values():
            rt.close()


def _publish_in_process(ws: Workspace) -> None:
    rt = Runtime.create(load_config(ws.config_path))
    try:
        assert not publish_fleet(rt).failed
    finally:
        rt.close()


def _report(office: Workspace, keyring: Path, inventory: Path) -> tuple[int, dict[str, Any]]:
    done = office.cli("--json", "fleet", "report", "--keyring", str(keyring),
                      "--expect", str(inventory))
    assert done.stdout.strip(), done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    jsonschema.validate(report, json.loads(SCHEMA.read_text()))
    return done.returncode, report


def _verdicts(report: dict[str, Any]) -> dict[str, str]:
    return {a["agency"]: a["verdict"] for a in report["agencies"]}


def _host_says(report: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(a["agency"], h["host"]): h["verdict"] for a in report["agencies"]
            for h in a["hosts"]}


def _summary_key(agency: str, host: str) -> str:
    return f"{agency}/fleet/{host}.json"


def test_city_report_shows_every_agency_verdict_and_never_counts_untrusted_good(
        iam_s3: IamS3, bucket: str, tmp_path: Path) -> None:
    admin = iam_s3.client()
    admin.create_bucket(Bucket=bucket)
    daily = iam_s3.user(f"daily-{bucket}", policy("daily-work", bucket))
    reader = iam_s3.user(f"fleet-{bucket}", policy("fleet-read", bucket))
    hosts = {name: _host(tmp_path, name, iam_s3, bucket, daily) for name in HOSTS}

    # host-c publishes once and stops (nothing to back up yet: its agencies are new).
    hosts[STOPPED].cli("fleet", "publish", check=True)
    stopped_at = time.time()  # its summaries were published before this
    backed_up = _work({name: hosts[name] for name in ("host-a", "host-b")}, admin, bucket)
    time.sleep(max(0.0, 1.2 - (time.time() - backed_up)))  # water's RPO of 1s is over
    with ThreadPoolExecutor(2) as pool:
        done = dict(zip(("host-a", "host-b"), pool.map(
            lambda name: hosts[name].cli("--json", "fleet", "publish", check=True),
            ("host-a", "host-b")), strict=True))
    published = {name: json.loads(result.stdout) for name, result in done.items()}
    assert {a["agency"]: a["verdict"] for a in published["host-a"]["agencies"]} == {
        "planning": "good", "permits": "failing", "water": "failing", "transit": "good"}
    first_planning = admin.get_object(Bucket=bucket, Key=_summary_key("planning", "host-a"))[
        "Body"].read()

    # The city office: the reader key of config/policies/fleet-read.json, no agency, no
    # password; the keyring holds the three hosts' public keys, copied out of band.
    office = Workspace(tmp_path / "office")
    office.add_s3_store(STORE, iam_s3.server, bucket, access_key=reader.access_key_id,
                        secret_key=reader.secret_access_key)
    office.write()
    assert "password" not in office.config_path.read_text()
    keyring = tmp_path / "keyring"
    keyring.mkdir()
    for name, ws in hosts.items():
        (keyring / f"{name}.pem").write_bytes(
            (ws.state_dir / "evidence" / PUBLIC_KEY_FILE).read_bytes())
    inventory = tmp_path / "city-inventory.toml"
    agencies = list(dict.fromkeys(a for h in HOSTS.values() for a in h))
    inventory.write_text("".join(f"[agencies.{a}]\n" + ("level = 2\n" if a == "health" else "")
                                 for a in agencies)
                         + "[agencies.harbour]\nname = \"Harbour authority\"\n")
    time.sleep(max(0.0, STOPPED_VALID + 0.5 - (time.time() - stopped_at)))

    code, report = _report(office, keyring, inventory)
    assert code == ExitCode.FLEET_NOT_ALL_GOOD
    assert _verdicts(report) == {
        "harbour": "unprotected",
        "planning": "meeting", "transit": "meeting",  # transit: both its hosts are good
        "permits": "not-meeting", "water": "not-meeting",
        "health": "not-meeting",  # level 1 measured, the inventory requires 2
        "fire": "not-meeting",  # never backed up
        "schools": "unknown",  # backed up, never drilled: no level measured
        "parks": "unknown", "library": "unknown", "museum": "unknown", "archive": "unknown",
    }
    assert report["agencies"][0]["agency"] == "harbour"  # the most important row first
    assert report["unprotected"] == ["harbour"]
    says = _host_says(report)
    assert says[("transit", "host-a")] == says[("transit", "host-b")] == "good"
    assert {says[(a, STOPPED)] for a in HOSTS[STOPPED]} == {"stale"}
    assert report["summary"]["stale_hosts"] == [STOPPED]
    assert {h["host"]: h["stale"] for h in report["hosts"]} == {
        "host-a": False, "host-b": False, "host-c": True}
    assert report["summary"] | {"stale_hosts": None} == {
        "agencies": 12, "meeting": 2, "not_meeting": 4, "unknown": 5, "unprotected": 1,
        "hosts": 3, "stale_hosts": None, "untrusted_files": 4}
    rows = {(a["agency"], h["host"]): h for a in report["agencies"] for h in a["hosts"]}
    assert "drill-failed" in rows[("permits", "host-a")]["findings"]
    assert "rpo-breached" in rows[("water", "host-a")]["findings"]
    assert rows[("health", "host-b")]["level_met"] == 1
    assert rows[("health", "host-b")]["level_required"] == 2
    assert rows[("health", "host-b")]["verdict"] == "failing"
    assert "no-good-backup" in rows[("fire", "host-b")]["findings"]
    planning = rows[("planning", "host-a")]
    assert planning["level_met"] == 1 and planning["trust"] == "trusted"
    assert planning["rpo_target_seconds"] == 86400 and planning["rpo_seconds"] > 0
    assert planning["rto_estimate_seconds"] is not None
    assert planning["last_good_drill_age_seconds"] >= 0
    # The history of those real runs, and each agency's own drill-age limit.
    history = planning["sources"][0]["history"]
    assert len(history["rpo"]) == 1 and history["rpo"][0][1] >= planning["rpo_seconds"] - 1
    assert [(code, rto) for _, code, rto in history["drills"]] == [
        ("ok", round(planning["sources"][0]["rto_estimate_seconds"], 1))]
    assert [d[1] for d in rows[("permits", "host-a")]["sources"][0]["history"]["drills"]] == [
        "failed"]
    assert planning["verify_max_age_seconds"] == 8 * 86400
    assert rows[("parks", STOPPED)]["sources"][0]["history"] == {
        "window_seconds": 30 * 86400, "rpo": [], "drills": []}  # never backed up

    # Bounded by agencies x hosts: one listing of agencies, one per agency, one GET a file.
    rt = Runtime.create(load_config(office.config_path))
    _, read = build_fleet_report(rt, Keyring.load(keyring))
    rt.close()
    assert read.requests == 1 + 11 + 12  # transit has two hosts' summaries
    assert not read.unreadable

    # The reader key reads summaries and nothing else.
    reader_s3 = iam_s3.client(reader)
    for key in ("planning/config", "planning/reports/" + PUBLIC_KEY_FILE):
        with pytest.raises(ClientError) as refused:
            reader_s3.get_object(Bucket=bucket, Key=key)
        assert error_code(refused.value) in REFUSED, key
    with pytest.raises(ClientError) as refused:
        reader_s3.put_object(Bucket=bucket, Key=_summary_key("planning", "host-a"), Body=b"{}")
    assert error_code(refused.value) in REFUSED

    # Attacks. host-a publishes again (a newer run); its first planning summary, genuine but
    # older, is put back in place: replayed.
    _publish_in_process(hosts["host-a"])
    admin.put_object(Bucket=bucket, Key=_summary_key("planning", "host-a"), Body=first_planning)
    # permits' summary is altered to look better than it is: bad signature.
    key = _summary_key("permits", "host-a")
    envelope = json.loads(admin.get_object(Bucket=bucket, Key=key)["Body"].read())
    envelope["report"]["verdict"] = "good"
    envelope["report"]["level_met"] = 4
    envelope["report"]["findings"] = []
    admin.put_object(Bucket=bucket, Key=key, Body=json.dumps(envelope).encode())
    # A host outside the keyring claims host-b's name and publishes harbour.
    rogue = Workspace(tmp_path / "rogue")
    rogue.config["daemon"]["hostname"] = "host-b"
    rogue.add_s3_store(STORE, iam_s3.server, bucket, access_key=daily.access_key_id,
                       secret_key=daily.secret_access_key)
    rogue.add_agency("harbour", store=STORE)
    rogue.write()
    _publish_in_process(rogue)

    code, attacked = _report(office, keyring, inventory)
    assert code == ExitCode.FLEET_NOT_ALL_GOOD
    says = _host_says(attacked)
    assert says[("planning", "host-a")] == "replayed"
    assert says[("permits", "host-a")] == "bad-signature"
    assert says[("harbour", "host-b")] == "unknown-key"
    verdicts = _verdicts(attacked)
    assert verdicts["planning"] == "unknown"  # was meeting: a replayed summary is not good
    assert verdicts["permits"] == "unknown"  # an altered "good" is not good
    assert verdicts["harbour"] == "unknown"  # no longer unprotected, but never good
    assert attacked["summary"]["meeting"] == 1  # transit only
    untrusted = {(f["agency"], f["host"]): f["trust"] for f in attacked["untrusted"]}
    assert {k: v for k, v in untrusted.items() if k[1] != STOPPED} == {
        ("planning", "host-a"): "replayed", ("permits", "host-a"): "bad-signature",
        ("harbour", "host-b"): "unknown-key"}
