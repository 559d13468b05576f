"""Judging a published summary (#20 item 2): signed by a key of the keyring, unaltered, not
older than the newest the reader has seen from that host, and not past its validity. Anything
else is shown for what it is and never counted as good.

The keyring is a directory of trusted hosts' public keys (<state_dir>/evidence/ed25519.pub.pem
of each host, copied out of band under any name ending in .pem)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from drbackup.errors import NotFoundError
from drbackup.fleet.summary import AgencySummary, MalformedSummary, parse_summary
from drbackup.verify.evidence import FORMAT as ENVELOPE_FORMAT
from drbackup.verify.evidence import canonical, key_id, load_public_key

MAX_SUMMARY_BYTES = 256 * 1024


class Trust(StrEnum):
    TRUSTED = "trusted"
    STALE = "stale"  # genuine, but older than its validity allows (host stopped?)
    REPLAYED = "replayed"  # genuine, but older than one already seen from that host
    UNKNOWN_KEY = "unknown-key"
    BAD_SIGNATURE = "bad-signature"
    MALFORMED = "malformed"


@dataclass(frozen=True)
class Keyring:
    keys: dict[str, Ed25519PublicKey]  # key id → key

    @classmethod
    def load(cls, directory: Path) -> Keyring:
        """Every *.pem in `directory`. Raises NotFoundError / DrBackupError with a hint."""
        try:
            files = sorted(p for p in directory.iterdir() if p.suffix == ".pem")
        except OSError as exc:
            raise NotFoundError(f"cannot read keyring {directory}: {exc.strerror}",
                                "pass --keyring DIR holding each trusted host's "
                                "evidence/ed25519.pub.pem") from None
        keys = {}
        for path in files:
            public = load_public_key(path)
            keys[key_id(public)] = public
        return cls(keys)


@dataclass(frozen=True)
class Judged:
    trust: Trust
    summary: AgencySummary | None  # None when malformed or unverifiable
    key_id: str | None
    reason: str


def judge(body: bytes, keyring: Keyring, *, now: float,
          newest_seen: dict[str, int] | None = None) -> Judged:
    """The trust state of one summary file. `newest_seen` maps host → the highest sequence
    the reader has trusted before (for replay detection)."""
    if len(body) > MAX_SUMMARY_BYTES:
        return Judged(Trust.MALFORMED, None, None, "summary larger than any genuine one")
    try:
        envelope = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # [[[[... nested past the limit
        return Judged(Trust.MALFORMED, None, None, "not JSON")
    if not isinstance(envelope, dict) or envelope.get("format") != ENVELOPE_FORMAT \
            or not isinstance(envelope.get("report"), dict) \
            or not isinstance(envelope.get("signature"), dict):
        return Judged(Trust.MALFORMED, None, None, "not a signed drbackup report")
    report, signature = envelope["report"], envelope["signature"]
    signer = signature.get("key_id")
    public = keyring.keys.get(signer) if isinstance(signer, str) else None
    if public is None:
        return Judged(Trust.UNKNOWN_KEY, None, str(signer)[:16],
                      "signed by a key not in the keyring")
    try:
        value = base64.b64decode(str(signature.get("value", "")), validate=True)
        public.verify(value, canonical(report))
    except (InvalidSignature, ValueError):
        return Judged(Trust.BAD_SIGNATURE, None, signer,
                      "the signature does not match the content: altered after signing")
    try:
        summary = parse_summary(report)
    except MalformedSummary as exc:
        return Judged(Trust.MALFORMED, None, signer, f"signed but malformed: {exc}")
    seen = (newest_seen or {}).get(summary.host)
    if seen is not None and summary.sequence < seen:
        return Judged(Trust.REPLAYED, summary, signer,
                      f"sequence {summary.sequence} older than {seen} already seen")
    if now > summary.published_at + summary.valid_seconds:
        return Judged(Trust.STALE, summary, signer,
                      f"published {now - summary.published_at:.0f}s ago, valid for "
                      f"{summary.valid_seconds:.0f}s")
    return Judged(Trust.TRUSTED, summary, signer, "")
