"""Authenticating recovery kits: the creating host signs the kit's content with its evidence key
(Ed25519, <state_dir>/evidence/ed25519.key, see drbackup.verify.evidence), inside the sealed
envelope; `recovery-kit open` verifies the signature and checks the signer against the
fingerprint printed on the paper kit (or a `--signer` public key file).

Sealing alone does not authenticate: anyone holding the team's public recipient key (every
drbackup host has it) can seal a kit, and the copy in a store can be overwritten with the daily
key. A forged kit would name an attacker's store and ids that climb out of `--out`; so, before
anything is written, the signature and every name in the kit are checked.

Sealed plaintext of a signed kit (one JSON object):
    {"format": "drbackup-recovery-kit-signed", "version": 1, "kit": {...payload...},
     "signature": {"algorithm": "Ed25519", "public_key": "<base64 raw>",
                   "value": "<base64 signature over canonical(kit)>"}}
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from drbackup.config.models import is_host_name, is_identifier
from drbackup.recovery.sealing import RecoveryKitError, spaced
from drbackup.verify.evidence import EvidenceKey, canonical

SIGNED_FORMAT = "drbackup-recovery-kit-signed"
SIGNED_VERSION = 1
_FINGERPRINT = re.compile(r"SHA256:[0-9a-f]{64}")
_CREDENTIAL_KEYS = frozenset({"aws_access_key_id", "aws_secret_access_key", "aws_session_token"})
_SOURCE_KINDS = frozenset({"directory", "postgres", "mysql", "sqlite", "dumpdir"})


def signer_fingerprint(public_key: Ed25519PublicKey) -> str:
    """SHA256:<hex> of the raw Ed25519 public key: what the paper kit prints."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + hashlib.sha256(raw).hexdigest()


def normalize_fingerprint(text: str) -> str:
    """A fingerprint as typed from paper ("SHA256: ab12 cd34 ...", any case) in canonical form.

    Raises RecoveryKitError when it is not one."""
    digits = "".join(text.split()).lower().removeprefix("sha256:")
    value = f"SHA256:{digits}"
    if _FINGERPRINT.fullmatch(value) is None:
        raise RecoveryKitError(f"--signer-fingerprint {text[:100]!r} is not a fingerprint",
                               "type the 64 hex digits after 'Signed by host key' on the "
                               "paper kit")
    return value


def sign_payload(key: EvidenceKey, payload: dict[str, Any]) -> dict[str, Any]:
    """The signed envelope that gets sealed."""
    raw = key.public_key.public_bytes(serialization.Encoding.Raw,
                                      serialization.PublicFormat.Raw)
    return {"format": SIGNED_FORMAT, "version": SIGNED_VERSION, "kit": payload,
            "signature": {"algorithm": "Ed25519",
                          "public_key": base64.b64encode(raw).decode("ascii"),
                          "value": base64.b64encode(key.private_key.sign(canonical(payload)))
                          .decode("ascii")}}


@dataclass(frozen=True)
class SignedKit:
    payload: dict[str, Any]
    signer: str | None  # the signer's fingerprint; None for an old unsigned kit


def unwrap(document: object, *, unsigned_format: str) -> SignedKit:
    """The kit's payload and who signed it, the signature checked against the embedded key
    (whether that key is the right one is `check_signer`'s question).

    Raises RecoveryKitError for a bad or malformed signature."""
    if isinstance(document, dict) and document.get("format") == unsigned_format:
        return SignedKit(document, None)
    if not isinstance(document, dict) or document.get("format") != SIGNED_FORMAT:
        raise RecoveryKitError("the recovery kit's content is not a drbackup kit",
                               "it opened, but was not made by 'drbackup recovery-kit create'")
    if document.get("version") != SIGNED_VERSION:
        raise RecoveryKitError(f"signed recovery kit version {document.get('version')!r} is "
                               "not supported", "use the drbackup release that made the kit")
    payload, signature = document.get("kit"), document.get("signature")
    if not isinstance(payload, dict) or not isinstance(signature, dict) \
            or signature.get("algorithm") != "Ed25519":
        raise RecoveryKitError("the recovery kit's signature is missing or malformed",
                               "do not use this kit; re-create it on the agency host")
    try:
        public_key = Ed25519PublicKey.from_public_bytes(
            base64.b64decode(str(signature.get("public_key", "")), validate=True))
        public_key.verify(base64.b64decode(str(signature.get("value", "")), validate=True),
                          canonical(payload))
    except (InvalidSignature, ValueError, TypeError):
        raise RecoveryKitError("the recovery kit's signature does not match its content: it "
                               "was forged or altered", "do not use this kit; take another "
                               "copy (USB, printout) and check its signer") from None
    return SignedKit(payload, signer_fingerprint(public_key))


def check_signer(kit: SignedKit, *, expected: str | None, allow_unsigned: bool) -> None:
    """The signer must be the one the operator trusts (the fingerprint on the paper kit, or
    the `--signer` key's); an unsigned kit only with allow_unsigned.

    Raises RecoveryKitError, in one line that shows the signer's fingerprint."""
    if kit.signer is None:
        if allow_unsigned:
            return
        raise RecoveryKitError(
            "the recovery kit is not signed (made before drbackup signed kits, or forged)",
            "re-create it on the agency host with 'drbackup recovery-kit create'; only if you "
            "know where this copy comes from, pass --allow-unsigned")
    if expected is None:
        raise RecoveryKitError(
            f"the recovery kit is signed by host key {spaced(kit.signer)}: compare it with "
            "the 'Signed by host key' line printed on the paper kit",
            "then pass --signer-fingerprint 'THE DIGITS PRINTED ON PAPER' (or --signer "
            "HOST_PUBLIC_KEY.pem); never copy them from this message")
    if kit.signer != expected:
        raise RecoveryKitError(
            f"the recovery kit is signed by host key {spaced(kit.signer)}, not by the expected "
            f"{spaced(expected)}", "do not use this kit: it was not made by the host named on "
            "the paper kit; take another copy")


def _name_error(what: str, value: object) -> RecoveryKitError:
    return RecoveryKitError(f"the recovery kit names an invalid {what} {str(value)[:80]!r}",
                            "do not use this kit: a genuine kit only holds valid ids; "
                            "re-create it on the agency host")


def _plain(value: object) -> bool:
    """A string that can go into a TOML string or an INI line: no control characters."""
    return isinstance(value, str) and not any(ord(c) < 32 or ord(c) == 127 for c in value)


def check_names(payload: dict[str, Any]) -> None:
    """Every id, store name, URL, path and secret in the kit is of the expected shape, so no
    file name climbs out of --out and nothing injects lines into the written config.

    Raises RecoveryKitError."""
    for key in ("host", "created"):  # written into a comment line of the config
        if key in payload and not _plain(payload[key]):
            raise _name_error(key, payload[key])
    stores = payload["stores"]
    for name, store in stores.items():
        if not is_identifier(name):
            raise _name_error("store name", name)
        if not isinstance(store, dict):
            raise _name_error("store", name)
        url, path = store.get("url"), store.get("path")
        if url is not None and not (_plain(url) and str(url).startswith("s3:")):
            raise _name_error("store URL", url)
        if path is not None and not (_plain(path) and PurePosixPath(str(path)).is_absolute()
                                     and ".." not in PurePosixPath(str(path)).parts):
            raise _name_error("store path", path)
        if (url is None) == (path is None) or not _plain(store.get("region", "")):
            raise _name_error("store", name)
        creds = store.get("credentials")
        if creds is not None and (not isinstance(creds, dict) or not all(
                k in _CREDENTIAL_KEYS and _plain(v) for k, v in creds.items())):
            raise _name_error("credentials of store", name)
    for agency in payload["agencies"]:
        if not isinstance(agency, dict) or not is_identifier(agency.get("id")):
            raise _name_error("agency id", agency.get("id") if isinstance(agency, dict)
                              else agency)
        replicas = agency.get("replicas")
        if not isinstance(replicas, list):
            raise _name_error("replica list of agency", agency["id"])
        for store_name in (agency.get("store"), *replicas):
            if not is_identifier(store_name) or store_name not in stores:
                raise _name_error("store of agency", store_name)
        if not _plain(agency.get("password")) or not agency.get("password"):
            raise _name_error("password of agency", agency["id"])
        if "maintenance_host" in agency and not is_host_name(agency["maintenance_host"]):
            raise _name_error("maintenance host of agency", agency["id"])
        sources = agency.get("sources")
        if not isinstance(sources, list):
            raise _name_error("source list of agency", agency["id"])
        for source in sources:
            if not isinstance(source, dict) or not is_identifier(source.get("id")) \
                    or source.get("kind") not in _SOURCE_KINDS:
                raise _name_error("source", source.get("id") if isinstance(source, dict)
                                  else source)
            paths = source.get("paths", [])
            if not isinstance(paths, list) or not all(_plain(p) for p in paths):
                raise _name_error("source paths of", source["id"])
