"""Every trust state of a published summary: genuine, altered, unknown key, replayed, stale,
malformed; and what a summary may never carry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drbackup.fleet.summary import AgencySummary, MalformedSummary, SourceStatus, parse_summary
from drbackup.fleet.trust import Keyring, Trust, judge
from drbackup.verify.evidence import EvidenceKey, public_pem

NOW = 1_800_000_000.0


def _summary(sequence: int = 5, published_at: float = NOW - 60) -> AgencySummary:
    return AgencySummary(
        host="host-a", agency="planning", sequence=sequence, published_at=published_at,
        valid_seconds=3600, drbackup_version="0.1.0", verdict="good", level_met=3,
        level_required=3, sources=[SourceStatus(
            "documents", "directory", NOW - 600, 600.0, 3600.0, NOW - 86400, 120.0, 14400.0,
            3, [])])


def _signed(key: EvidenceKey, summary: AgencySummary) -> bytes:
    return json.dumps(key.sign(summary.to_report())).encode()


def _keyring(tmp_path: Path, *keys: EvidenceKey) -> Keyring:
    ring = tmp_path / "keyring"
    ring.mkdir()
    for number, key in enumerate(keys):
        (ring / f"host{number}.pem").write_bytes(public_pem(key.public_key))
    return Keyring.load(ring)


def _key(tmp_path: Path, number: int) -> EvidenceKey:
    return EvidenceKey.load_or_create(tmp_path / f"k{number}")


def test_genuine_summary_is_trusted_and_round_trips(tmp_path: Path) -> None:
    key = _key(tmp_path, 0)
    judged = judge(_signed(key, _summary()), _keyring(tmp_path, key), now=NOW)
    assert judged.trust is Trust.TRUSTED
    assert judged.summary == _summary()
    assert judged.key_id == key.key_id


def test_altered_summary_has_a_bad_signature(tmp_path: Path) -> None:
    key = _key(tmp_path, 0)
    envelope = json.loads(_signed(key, _summary()))
    envelope["report"]["verdict"] = "good"
    envelope["report"]["level_met"] = 6
    judged = judge(json.dumps(envelope).encode(), _keyring(tmp_path, key), now=NOW)
    assert judged.trust is Trust.BAD_SIGNATURE
    assert judged.summary is None


def test_summary_of_a_key_outside_the_keyring_is_unknown(tmp_path: Path) -> None:
    trusted, stranger = _key(tmp_path, 0), _key(tmp_path, 1)
    judged = judge(_signed(stranger, _summary()), _keyring(tmp_path, trusted), now=NOW)
    assert judged.trust is Trust.UNKNOWN_KEY
    assert judged.summary is None


def test_older_sequence_than_seen_is_replayed(tmp_path: Path) -> None:
    key = _key(tmp_path, 0)
    ring = _keyring(tmp_path, key)
    judged = judge(_signed(key, _summary(sequence=4)), ring, now=NOW,
                   newest_seen={"host-a": 5})
    assert judged.trust is Trust.REPLAYED
    same = judge(_signed(key, _summary(sequence=5)), ring, now=NOW, newest_seen={"host-a": 5})
    assert same.trust is Trust.TRUSTED


def test_summary_past_its_validity_is_stale(tmp_path: Path) -> None:
    key = _key(tmp_path, 0)
    judged = judge(_signed(key, _summary(published_at=NOW - 3601)), _keyring(tmp_path, key),
                   now=NOW)
    assert judged.trust is Trust.STALE


def test_signed_but_hostile_ids_are_malformed(tmp_path: Path) -> None:
    key = _key(tmp_path, 0)
    ring = _keyring(tmp_path, key)
    for field, value in (("agency", "../etc"), ("host", "a/b"), ("verdict", "great"),
                         ("findings", ["/srv/planning/secret.doc"])):
        report = _summary().to_report()
        report[field] = value
        judged = judge(json.dumps(key.sign(report)).encode(), ring, now=NOW)
        assert judged.trust is Trust.MALFORMED, field
    assert judge(b"\xff not json", ring, now=NOW).trust is Trust.MALFORMED
    assert judge(b"{}", ring, now=NOW).trust is Trust.MALFORMED
    assert judge(b"[" * 200_000, ring, now=NOW).trust is Trust.MALFORMED  # no RecursionError


def test_offline_copy_is_null_or_an_exact_record_of_figures() -> None:
    report = _summary().to_report()
    assert report["offline_copy"] is None
    assert parse_summary(report).offline_copy is None
    record = {"met": True, "verified_media": 2, "newest_snapshot_at": NOW - 86400,
              "age_seconds": 86400.0, "max_age_seconds": 7 * 86400.0}
    assert parse_summary(report | {"offline_copy": record}).offline_copy == record
    for hostile in ({**record, "label": "/media/usb-secret"}, {**record, "met": "yes"},
                    {**record, "age_seconds": "1d"}, [record]):
        with pytest.raises(MalformedSummary):
            parse_summary(report | {"offline_copy": hostile})
