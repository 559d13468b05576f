"""Evidence reports carried on a medium (#19 §3): what the importing side records of them.
Only an envelope signed by the trusted key, of the agency imported, counts; every field of it
is checked for type and size (the medium is hostile until proven otherwise)."""

from __future__ import annotations

import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drbackup.jobs.media_import import carried_evidence
from drbackup.verify.evidence import EvidenceKey

KEY = EvidenceKey(Ed25519PrivateKey.generate())
DRILL: dict[str, Any] = {
    "kind": "drill", "drill_kind": "files", "agency": "planning", "source": "documents",
    "host": "external-1", "finished_at": "2026-12-01T10:00:00Z", "verdict": "pass",
    "rto": {"estimate_seconds": 42.5, "target_seconds": 14400, "met": True}}


def _carried(report: dict[str, Any], key: EvidenceKey = KEY, agency: str = "planning") -> Any:
    body = json.dumps(key.sign(report)).encode()
    return carried_evidence(body, KEY.public_key, agency=agency, name="r.json", label="disk-a",
                            imported_at=1.0)


def test_a_drill_signed_by_the_trusted_key_is_recorded_with_its_fields() -> None:
    found = _carried(DRILL)
    assert (found.kind, found.source, found.sub_kind, found.verdict, found.host) == (
        "drill", "documents", "files", "pass", "external-1")
    assert found.rto_estimate_seconds == 42.5 and found.label == "disk-a"
    assert found.finished_at == 1796119200.0 and found.key_id == KEY.key_id


def test_other_keys_agencies_kinds_and_garbage_are_not_counted() -> None:
    assert _carried(DRILL, key=EvidenceKey(Ed25519PrivateKey.generate())) is None
    assert _carried(DRILL, agency="finance") is None
    assert _carried({**DRILL, "kind": "guard-verdict"}) is None
    assert carried_evidence(b"{not json", KEY.public_key, agency="planning", name="r.json",
                            label="disk-a", imported_at=1.0) is None


def test_hostile_field_values_are_dropped_not_trusted() -> None:
    found = _carried({**DRILL, "source": "../../etc", "verdict": "excellent", "host": "h" * 999,
                      "finished_at": 12, "rto": {"estimate_seconds": True}})
    assert (found.source, found.verdict, found.host, found.finished_at,
            found.rto_estimate_seconds) == (None, None, "?", None, None)
