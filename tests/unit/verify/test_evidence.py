"""Evidence signing: the key is made once with mode 0600, reports verify with the daemon's public
key, and any change to a report or a foreign key fails verification."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drbackup.errors import StateError, VerifyFailedError
from drbackup.verify.evidence import (
    KEY_DIR,
    PRIVATE_KEY_FILE,
    PUBLIC_KEY_FILE,
    EvidenceKey,
    load_public_key,
    verify_envelope,
)

REPORT = {"kind": "drill", "agency": "planning", "verdict": "pass",
          "files": [{"path": "/srv/a", "sha256": "ab" * 32}], "note": "长城"}


def test_key_is_created_once_private_and_reused(tmp_path: Path) -> None:
    first = EvidenceKey.load_or_create(tmp_path)
    key_file = tmp_path / KEY_DIR / PRIVATE_KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600
    second = EvidenceKey.load_or_create(tmp_path)
    assert first.key_id == second.key_id
    assert load_public_key(tmp_path / KEY_DIR / PUBLIC_KEY_FILE).public_bytes_raw() == \
        first.public_key.public_bytes_raw()


def test_signed_report_verifies_and_any_change_fails(tmp_path: Path) -> None:
    key = EvidenceKey.load_or_create(tmp_path)
    envelope = key.sign(copy.deepcopy(REPORT))
    assert verify_envelope(envelope, key.public_key).report == REPORT
    changes: list[Callable[[dict[str, Any]], object]] = [
        lambda r: r.update(verdict="fail"),
        lambda r: r["files"][0].update(sha256="00" * 32),
        lambda r: r.pop("note"),
    ]
    for change in changes:
        tampered = copy.deepcopy(envelope)
        change(tampered["report"])
        with pytest.raises(VerifyFailedError, match="altered after it was signed"):
            verify_envelope(tampered, key.public_key)


def test_report_signed_by_another_key_fails(tmp_path: Path) -> None:
    ours = EvidenceKey.load_or_create(tmp_path / "ours")
    theirs = EvidenceKey.load_or_create(tmp_path / "theirs")
    with pytest.raises(VerifyFailedError, match="not the trusted key"):
        verify_envelope(theirs.sign(REPORT), ours.public_key)


def test_not_a_report_fails(tmp_path: Path) -> None:
    key = EvidenceKey.load_or_create(tmp_path)
    with pytest.raises(VerifyFailedError, match="not a drbackup evidence report"):
        verify_envelope({"report": REPORT}, key.public_key)


def test_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    EvidenceKey.load_or_create(tmp_path)
    (tmp_path / KEY_DIR / PRIVATE_KEY_FILE).chmod(0o644)
    with pytest.raises(StateError, match="has mode 644") as caught:
        EvidenceKey.load_or_create(tmp_path)
    assert "chmod 600" in caught.value.one_line()
