"""Issue #14 hole 5: anyone holding the team's public recipient key can seal a kit. A forged kit
(unsigned, or signed by another key) is refused in one line before anything is written, and so is
a kit whose ids climb out of --out, even when signed by the trusted key."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drbackup.errors import ExitCode
from drbackup.recovery.kit import PAYLOAD_FORMAT, PAYLOAD_VERSION
from drbackup.recovery.sealing import load_recipient, seal
from drbackup.recovery.signing import sign_payload
from drbackup.verify.evidence import EvidenceKey
from tests.support.kits import printed_signer
from tests.support.workspace import Workspace

CREATED = "2026-12-06T19:00:00+00:00"


def _payload(agency_id: str, store: dict[str, Any]) -> dict[str, Any]:
    return {"format": PAYLOAD_FORMAT, "version": PAYLOAD_VERSION, "created": CREATED,
            "host": "evil", "stores": {"primary": store},
            "agencies": [{"id": agency_id, "store": "primary", "replicas": [],
                          "repositories": {"primary": "s3:https://evil.example/bucket/x"},
                          "password": "attacker-chosen", "sources": []}]}


@pytest.fixture
def team(workspace: Workspace, tmp_path: Path) -> tuple[Workspace, Path, str]:
    """A genuine kit made on the agency host: the identity key and the printed signer."""
    workspace.add_agency("roads")
    keys = tmp_path / "keys"
    workspace.cli("recovery-kit", "keygen", "--out", str(keys / "identity"), check=True)
    created = workspace.cli("recovery-kit", "create", "--recipient", str(keys / "identity.pub"),
                            "--no-upload", "--out", str(tmp_path / "kits"), check=True)
    signer = printed_signer(tmp_path / "kits" / "drbackup-recovery-kit-all.txt")
    assert f"signed by host key {signer}" in created.stdout
    return workspace, keys, signer


def _seal(keys: Path, document: dict[str, Any], path: Path) -> Path:
    recipient = load_recipient(keys / "identity.pub")  # all an attacker needs
    path.write_text(seal(json.dumps(document).encode(), recipient, CREATED))
    return path


def test_forged_kits_are_refused_before_anything_is_written(
        team: tuple[Workspace, Path, str], tmp_path: Path) -> None:
    ws, keys, signer = team
    evil_store = {"url": "s3:https://evil.example/bucket", "region": "us-east-1"}
    attacker = EvidenceKey(Ed25519PrivateKey.generate())
    trusted = EvidenceKey.load_or_create(ws.state_dir)  # the host's own key (stolen, say)
    forged = tmp_path / "forged"
    forged.mkdir()
    cases = [
        # An old-style unsigned kit, whose id climbs out of --out: the old code wrote
        # <parent>/escaped.password.
        ("unsigned", _seal(keys, _payload("../../escaped", evil_store), forged / "a.kit"),
         [], "is not signed"),
        ("other key", _seal(keys, sign_payload(attacker, _payload("roads", evil_store)),
                            forged / "b.kit"), ["--signer-fingerprint", signer],
         "not by the expected"),
        ("traversal, trusted key",
         _seal(keys, sign_payload(trusted, _payload("../../escaped", evil_store)),
               forged / "c.kit"), ["--signer-fingerprint", signer], "invalid agency id"),
        ("traversal, unsigned allowed",
         _seal(keys, _payload("roads", {**evil_store, "url": "s3:x\n[stores.y]"}),
               forged / "d.kit"), ["--allow-unsigned"], "invalid store URL"),
        ("store name", _seal(keys, sign_payload(trusted, {
            **_payload("roads", evil_store),
            "stores": {"../../escaped": {**evil_store, "credentials": {
                "aws_access_key_id": "k", "aws_secret_access_key": "s"}}}}), forged / "e.kit"),
         ["--signer-fingerprint", signer], "invalid store name"),
        ("no fingerprint given", _seal(keys, sign_payload(attacker, _payload("roads",
                                                                             evil_store)),
                                       forged / "f.kit"), [], "compare it with"),
    ]
    parent = tmp_path / "restore-host"
    parent.mkdir()
    for name, kit, extra, message in cases:
        result = ws.cli("recovery-kit", "open", "--identity", str(keys / "identity"), "--kit",
                        str(kit), "--out", str(parent / "out"), *extra)
        assert result.returncode == ExitCode.KIT_INVALID, (name, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (name, result.stderr)
        assert "Traceback" not in result.stderr
        assert os.listdir(parent) == [], name  # neither --out nor a temp dir nor an escape
        assert not (tmp_path / "escaped.password").exists()
        assert sorted(os.listdir(tmp_path)) == ["forged", "keys", "kits", "restore-host", "ws"]


def test_the_genuine_kit_opens_with_the_printed_fingerprint_or_the_signer_key(
        team: tuple[Workspace, Path, str], tmp_path: Path) -> None:
    ws, keys, signer = team
    kit = tmp_path / "kits" / "drbackup-recovery-kit-all.kit"
    for extra in (["--signer-fingerprint", signer.lower()],
                  ["--signer", str(ws.state_dir / "evidence" / "ed25519.pub.pem")]):
        out = tmp_path / f"out-{len(extra[1])}"
        opened = ws.cli("recovery-kit", "open", "--identity", str(keys / "identity"), "--kit",
                        str(kit), "--out", str(out), *extra, check=True)
        assert f"signed by host key {signer}" in opened.stdout
        assert (out / "passwords" / "roads.password").read_text() == ws.passwords["roads"] + "\n"
    # An unsigned kit, explicitly allowed: it opens, with a loud warning.
    unsigned = {**_payload("roads", {"path": str(ws.state_dir / "repos")})}
    _seal(keys, unsigned, tmp_path / "old.kit")
    allowed = ws.cli("recovery-kit", "open", "--identity", str(keys / "identity"), "--kit",
                     str(tmp_path / "old.kit"), "--out", str(tmp_path / "out-old"),
                     "--allow-unsigned", check=True)
    assert "WARNING: this recovery kit is NOT SIGNED" in allowed.stderr
    assert f"store primary: {ws.state_dir / 'repos'}" in allowed.stdout
