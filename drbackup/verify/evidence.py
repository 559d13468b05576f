"""Signed evidence: every check and drill writes a JSON report, signed with the daemon's
Ed25519 key, so an auditor can prove later that the report is the one drbackup wrote.

File format (one JSON object):
    {"format": "drbackup-evidence/1",
     "report": {...},                         # what was checked, restored, found; the verdict
     "signature": {"algorithm": "Ed25519", "key_id": "<16 hex>", "public_key": "<base64 raw>",
                   "value": "<base64 signature over canonical(report)>"}}
canonical(report) = JSON with sorted keys, no spaces, UTF-8. The embedded public key only says
which key signed; trust comes from checking against the daemon's public key obtained out of band
(`--public-key`, or the key in the state directory).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from drbackup.errors import DrBackupError, NotFoundError, StateError, VerifyFailedError

FORMAT = "drbackup-evidence/1"
KEY_DIR = "evidence"
PRIVATE_KEY_FILE = "ed25519.key"
PUBLIC_KEY_FILE = "ed25519.pub.pem"


def canonical(report: dict[str, Any]) -> bytes:
    return json.dumps(report, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class EvidenceKey:
    """The daemon's signing key, held in <state_dir>/evidence/ (private key mode 0600)."""

    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    @classmethod
    def load_or_create(cls, state_dir: Path) -> EvidenceKey:
        """Load the key, generating it on first use. Raises StateError when the key file is
        unreadable, malformed or readable by others."""
        directory = state_dir / KEY_DIR
        path = directory / PRIVATE_KEY_FILE
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not path.exists():
                fresh = Ed25519PrivateKey.generate()
                pem = fresh.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                except FileExistsError:
                    pass  # another process created it first: use theirs
                else:
                    with os.fdopen(fd, "wb") as handle:
                        handle.write(pem)
                        handle.flush()
                        os.fsync(handle.fileno())
            mode = path.stat().st_mode & 0o777
            if mode & 0o077:
                raise StateError(f"evidence signing key {path} has mode {mode:o}",
                                 f"restrict it: chmod 600 {path}")
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except OSError as exc:
            raise StateError(f"cannot use the evidence signing key {path}: {exc.strerror}",
                             "check daemon.state_dir is writable by this user") from None
        except ValueError:
            raise StateError(f"evidence signing key {path} is not a PEM private key",
                             "move it away; a new key is generated (old reports stay "
                             "verifiable with the old public key)") from None
        if not isinstance(loaded, Ed25519PrivateKey):
            raise StateError(f"evidence signing key {path} is not an Ed25519 key",
                             "move it away to generate a new one")
        key = cls(loaded)
        public = directory / PUBLIC_KEY_FILE
        public_bytes = public_pem(key.public_key)
        if not public.exists() or public.read_bytes() != public_bytes:
            public.write_bytes(public_bytes)
        return key

    def sign(self, report: dict[str, Any]) -> dict[str, Any]:
        """The signed envelope of a report."""
        raw = self.public_key.public_bytes(serialization.Encoding.Raw,
                                           serialization.PublicFormat.Raw)
        signature = self.private_key.sign(canonical(report))
        return {
            "format": FORMAT,
            "report": report,
            "signature": {
                "algorithm": "Ed25519",
                "key_id": self.key_id,
                "public_key": base64.b64encode(raw).decode("ascii"),
                "value": base64.b64encode(signature).decode("ascii"),
            },
        }


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A PEM public key file. Raises NotFoundError / DrBackupError with a hint."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise NotFoundError(f"cannot read public key {path}: {exc.strerror}",
                            "pass the daemon's <state_dir>/evidence/ed25519.pub.pem") from None
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise DrBackupError(f"{path} is not a PEM public key",
                            "pass the daemon's <state_dir>/evidence/ed25519.pub.pem") from None
    if not isinstance(key, Ed25519PublicKey):
        raise DrBackupError(f"{path} is not an Ed25519 public key",
                            "pass the daemon's <state_dir>/evidence/ed25519.pub.pem")
    return key


@dataclass(frozen=True)
class VerifiedReport:
    report: dict[str, Any]
    key_id: str


def verify_envelope(envelope: object, public_key: Ed25519PublicKey, *, name: str = "report"
                    ) -> VerifiedReport:
    """Check an evidence envelope against a trusted public key.

    Raises VerifyFailedError when the file is not an evidence report, was signed by another
    key, or was changed after signing.
    """
    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
        raise VerifyFailedError(f"{name} is not a drbackup evidence report ({FORMAT})",
                                "pass a report file written by 'drbackup verify'")
    report = envelope.get("report")
    signature = envelope.get("signature")
    if not isinstance(report, dict) or not isinstance(signature, dict):
        raise VerifyFailedError(f"{name} has no report or no signature",
                                "the file is damaged; fetch it again from the store")
    trusted_id = key_id(public_key)
    if signature.get("key_id") != trusted_id:
        raise VerifyFailedError(
            f"{name} was signed by key {signature.get('key_id')!r}, not the trusted key "
            f"{trusted_id}", "check you have the public key of the daemon that wrote it")
    try:
        value = base64.b64decode(str(signature.get("value", "")), validate=True)
        public_key.verify(value, canonical(report))
    except (InvalidSignature, ValueError):
        raise VerifyFailedError(
            f"{name}: the signature does not match the content: the report was altered "
            "after it was signed", "do not trust this report; compare with the copy in the "
            "store and the state directory") from None
    return VerifiedReport(report, trusted_id)
