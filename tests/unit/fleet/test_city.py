"""The city report's rules, pure: per-host rows, agency verdicts across hosts, replay across
agencies and stores, moved files, --since, unprotected agencies first, the inventory's level."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import jsonschema

from drbackup.cli.output import jsonable
from drbackup.fleet.city import FleetReport, SummaryFile, city_report
from drbackup.fleet.inventory import ExpectedAgency
from drbackup.fleet.summary import AgencySummary, SourceStatus
from drbackup.fleet.trust import Keyring
from drbackup.verify.evidence import EvidenceKey, public_pem

NOW = 1_800_000_000.0


def _summary(host: str, agency: str, *, sequence: int = 10, verdict: str = "good",
             level: int | None = 1, findings: list[str] | None = None,
             published_at: float = NOW - 60) -> AgencySummary:
    return AgencySummary(
        host=host, agency=agency, sequence=sequence, published_at=published_at,
        valid_seconds=3600, drbackup_version="0.1.0", verdict=verdict, level_met=level,
        level_required=None, sources=[SourceStatus(
            "docs", "directory", NOW - 600, 600.0, 86400.0, NOW - 7200, 30.0, 86400.0, level,
            findings or [])], findings=findings or [])


def _file(key: EvidenceKey, summary: AgencySummary, store: str = "city",
          host: str | None = None, agency: str | None = None) -> SummaryFile:
    body = json.dumps(key.sign(summary.to_report())).encode()
    host, agency = host or summary.host, agency or summary.agency
    return SummaryFile(store, f"{agency}/fleet/{host}.json", agency, host, body)


def _keys(tmp_path: Path, *names: str) -> tuple[dict[str, EvidenceKey], Keyring]:
    keys = {n: EvidenceKey.load_or_create(tmp_path / n) for n in names}
    ring = tmp_path / "ring"
    ring.mkdir()
    for name, key in keys.items():
        (ring / f"{name}.pem").write_bytes(public_pem(key.public_key))
    return keys, Keyring.load(ring)


SCHEMA = Path(__file__).resolve().parents[3] / "docs" / "schemas" / "fleet-report.schema.json"


def _valid(report: FleetReport) -> FleetReport:
    jsonschema.validate(jsonable(report), json.loads(SCHEMA.read_text()))
    return report


def _verdicts(files: list[SummaryFile], ring: Keyring, **kwargs: object) -> dict[str, str]:
    report = city_report(files, ring, now=NOW, stores=["city"], **kwargs)  # type: ignore[arg-type]
    return {a.agency: a.verdict for a in _valid(report).agencies}


def test_an_agency_meets_only_when_every_host_row_is_trusted_and_good(tmp_path: Path) -> None:
    keys, ring = _keys(tmp_path, "a", "b")
    a, b = keys["a"], keys["b"]
    files = [_file(a, _summary("host-a", "planning")), _file(a, _summary("host-a", "water")),
             _file(b, _summary("host-b", "water", verdict="failing",
                               findings=["drill-failed"])),
             _file(a, _summary("host-a", "parks", level=None, findings=["never-drilled"],
                               verdict="unknown")),
             _file(b, _summary("host-b", "planning", published_at=NOW - 4000))]
    report = _valid(city_report(files, ring, now=NOW, stores=["city"]))
    assert {x.agency: x.verdict for x in report.agencies} == {
        "water": "not-meeting", "planning": "unknown", "parks": "unknown"}
    planning = next(x for x in report.agencies if x.agency == "planning")
    assert [(h.host, h.verdict) for h in planning.hosts] == [("host-a", "good"),
                                                             ("host-b", "stale")]
    assert not report.all_good
    good = _valid(city_report(files[:1], ring, now=NOW, stores=["city"]))
    assert good.all_good and good.summary.meeting == 1


def test_a_file_older_than_the_hosts_newest_anywhere_is_replayed(tmp_path: Path) -> None:
    keys, ring = _keys(tmp_path, "a")
    a = keys["a"]
    old = _summary("host-a", "planning", sequence=9)
    files = [_file(a, old, store="city"), _file(a, _summary("host-a", "planning"), store="dr"),
             _file(a, _summary("host-a", "water"))]
    report = _valid(city_report(files, ring, now=NOW, stores=["city", "dr"]))
    planning = next(x for x in report.agencies if x.agency == "planning")
    # The newest copy counts for the row; the replayed one is listed, and the exit is not 0.
    assert planning.verdict == "meeting" and planning.hosts[0].stores == ["dr"]
    assert [(f.store, f.trust) for f in report.untrusted] == [("city", "replayed")]
    assert not report.all_good
    # Alone (the newer copy gone), the replayed copy is never good.
    assert _verdicts([files[0], files[2]], ring)["planning"] == "unknown"


def test_a_genuine_summary_moved_to_another_agency_or_host_is_malformed(tmp_path: Path
                                                                        ) -> None:
    keys, ring = _keys(tmp_path, "a")
    moved = _file(keys["a"], _summary("host-a", "planning"), agency="water")
    renamed = _file(keys["a"], _summary("host-a", "planning"), host="host-z")
    report = _valid(city_report([moved, renamed], ring, now=NOW, stores=["city"]))
    assert {f.trust for f in report.untrusted} == {"malformed"}
    assert report.summary.meeting == 0


def test_since_makes_older_summaries_stale(tmp_path: Path) -> None:
    keys, ring = _keys(tmp_path, "a")
    files = [_file(keys["a"], _summary("host-a", "planning", published_at=NOW - 600))]
    assert _verdicts(files, ring, since=NOW - 3600)["planning"] == "meeting"
    report = _valid(city_report(files, ring, now=NOW, stores=["city"], since=NOW - 300))
    assert report.agencies[0].hosts[0].verdict == "stale"
    assert report.summary.stale_hosts == ["host-a"]


def test_unprotected_first_and_the_inventory_level_overrides_the_hosts(tmp_path: Path) -> None:
    keys, ring = _keys(tmp_path, "a")
    files = [_file(keys["a"], _summary("host-a", "planning", level=1)),
             _file(keys["a"], _summary("host-a", "water", level=1))]
    expected = [ExpectedAgency("water", level=2), ExpectedAgency("zoo", name="City zoo"),
                ExpectedAgency("planning")]
    report = _valid(city_report(files, ring, now=NOW, stores=["city"], expected=expected))
    assert [(x.agency, x.verdict) for x in report.agencies] == [
        ("zoo", "unprotected"), ("water", "not-meeting"), ("planning", "meeting")]
    assert report.unprotected == ["zoo"] and report.agencies[0].name == "City zoo"
    water = report.agencies[1]
    assert (water.level_required, water.level_met, water.hosts[0].verdict) == (2, 1, "failing")


def test_an_unknown_key_or_an_altered_file_is_never_good(tmp_path: Path) -> None:
    keys, ring = _keys(tmp_path, "a")
    stranger = EvidenceKey.load_or_create(tmp_path / "stranger")
    failing = _summary("host-a", "water", verdict="failing", findings=["rpo-breached"])
    envelope = json.loads(_file(keys["a"], failing).body)
    envelope["report"] |= {"verdict": "good", "findings": []}
    altered = replace(_file(keys["a"], failing), body=json.dumps(envelope).encode())
    report = _valid(city_report([altered, _file(stranger, _summary("host-a", "planning"))], ring,
                         now=NOW, stores=["city"]))
    assert {(f.agency, f.trust) for f in report.untrusted} == {
        ("water", "bad-signature"), ("planning", "unknown-key")}
    assert report.summary.meeting == 0 and report.summary.unknown == 2
