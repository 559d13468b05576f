"""Sealing a recovery kit to an offline X25519 key.

Format, version 1 (all integers big-endian, sizes in bytes):

    magic      8   b"DRBKKIT\\x00"
    version    1   1
    suite      1   1 = X25519 + HKDF-SHA256 + ChaCha20-Poly1305
    recipient 32   SHA-256 of the recipient's raw public key (its fingerprint)
    ephemeral 32   the sender's one-time X25519 public key
    nonce     12   random
    ciphertext n   ChaCha20-Poly1305(key, nonce, plaintext, aad), with a 16-byte tag

key = HKDF-SHA256(ikm = X25519(ephemeral, recipient), salt = ephemeral || recipient public key,
info = b"drbackup recovery kit v1"). The associated data is the binary header above plus the
armor's header lines, so changing any byte of the armored kit is detected.

Armored (printable) form:

    -----BEGIN DRBACKUP RECOVERY KIT-----
    Version: 1
    Recipient: SHA256:<64 hex digits>
    Created: <ISO 8601 time>

    <base64 of the binary, 64 characters a line>
    -----END DRBACKUP RECOVERY KIT-----

Key files are text: a comment line, then `DRBACKUP-IDENTITY-1:<base64 raw private key>` or
`DRBACKUP-RECIPIENT-1:<base64 raw public key>`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from drbackup.errors import DrBackupError, ExitCode

MAGIC = b"DRBKKIT\x00"
VERSION = 1
SUITE_X25519_HKDF_CHACHA = 1
HEADER_SIZE = len(MAGIC) + 1 + 1 + 32 + 32 + 12
TAG_SIZE = 16
INFO = b"drbackup recovery kit v1"
BEGIN = "-----BEGIN DRBACKUP RECOVERY KIT-----"
END = "-----END DRBACKUP RECOVERY KIT-----"
IDENTITY_PREFIX = "DRBACKUP-IDENTITY-1:"
RECIPIENT_PREFIX = "DRBACKUP-RECIPIENT-1:"
_FINGERPRINT = re.compile(r"SHA256:[0-9a-f]{64}")
_CREATED = re.compile(r"[0-9T:+\-.Z]{10,40}")


class RecoveryKitError(DrBackupError):
    exit_code = ExitCode.KIT_INVALID


def _raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint_of(public_raw: bytes) -> str:
    return "SHA256:" + hashlib.sha256(public_raw).hexdigest()


def spaced(fingerprint: str) -> str:
    """The fingerprint in groups of four, for reading aloud and comparing on paper."""
    digits = fingerprint.removeprefix("SHA256:")
    return "SHA256: " + " ".join(digits[i:i + 4] for i in range(0, len(digits), 4))


@dataclass(frozen=True)
class Identity:
    private: X25519PrivateKey

    @property
    def public_raw(self) -> bytes:
        return _raw_public(self.private.public_key())

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.public_raw)


@dataclass(frozen=True)
class Recipient:
    public: X25519PublicKey

    @property
    def raw(self) -> bytes:
        return _raw_public(self.public)

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.raw)


def generate_identity() -> Identity:
    return Identity(X25519PrivateKey.generate())


def identity_text(identity: Identity) -> str:
    raw = identity.private.private_bytes(serialization.Encoding.Raw,
                                         serialization.PrivateFormat.Raw,
                                         serialization.NoEncryption())
    return (f"# drbackup recovery-kit identity (X25519 private key). Keep it OFFLINE.\n"
            f"# fingerprint of its public key: {identity.fingerprint}\n"
            f"{IDENTITY_PREFIX}{base64.b64encode(raw).decode()}\n")


def recipient_text(identity: Identity) -> str:
    return (f"# drbackup recovery-kit recipient (X25519 public key)\n"
            f"# fingerprint: {identity.fingerprint}\n"
            f"{RECIPIENT_PREFIX}{base64.b64encode(identity.public_raw).decode()}\n")


def _key_line(path: Path, prefix: str, what: str) -> bytes:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecoveryKitError(f"{what} file {path} does not exist", "check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecoveryKitError(f"{what} file {path} cannot be read ({exc.__class__.__name__})",
                               "check the path and its permissions") from None
    for line in text.splitlines():
        if line.startswith(prefix):
            try:
                raw = base64.b64decode(line[len(prefix):].strip(), validate=True)
            except (binascii.Error, ValueError):
                break
            if len(raw) == 32:
                return raw
            break
    if what == "identity" and RECIPIENT_PREFIX in text:
        raise RecoveryKitError(f"{path} is the public recipient key, not the identity",
                               "give --identity the private key file keygen wrote (the one "
                               "without .pub, kept offline by the emergency team)")
    if what == "recipient" and IDENTITY_PREFIX in text:
        raise RecoveryKitError(f"{path} is the private identity key, not the recipient",
                               "give --recipient the .pub file keygen wrote; the identity "
                               "must stay offline, never on a drbackup host")
    raise RecoveryKitError(f"{path} is not a drbackup {what} file",
                           f"expected a line starting with {prefix}; "
                           "make one with 'drbackup recovery-kit keygen'")


def load_identity(path: Path) -> Identity:
    return Identity(X25519PrivateKey.from_private_bytes(_key_line(path, IDENTITY_PREFIX,
                                                                  "identity")))


def load_recipient(path: Path) -> Recipient:
    return Recipient(X25519PublicKey.from_public_bytes(_key_line(path, RECIPIENT_PREFIX,
                                                                 "recipient")))


def _derive(shared: bytes, ephemeral_raw: bytes, recipient_raw: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral_raw + recipient_raw,
                info=INFO).derive(shared)


def _armor_headers(recipient_fingerprint: str, created: str) -> list[str]:
    return [f"Version: {VERSION}", f"Recipient: {recipient_fingerprint}", f"Created: {created}"]


def seal(plaintext: bytes, recipient: Recipient, created: str) -> str:
    """The armored kit: plaintext encrypted and authenticated to the recipient."""
    if not _CREATED.fullmatch(created):
        raise ValueError("created must be an ISO 8601 time")
    ephemeral = X25519PrivateKey.generate()
    ephemeral_raw = _raw_public(ephemeral.public_key())
    key = _derive(ephemeral.exchange(recipient.public), ephemeral_raw, recipient.raw)
    nonce = os.urandom(12)
    header = (MAGIC + bytes([VERSION, SUITE_X25519_HKDF_CHACHA])
              + hashlib.sha256(recipient.raw).digest() + ephemeral_raw + nonce)
    headers = _armor_headers(recipient.fingerprint, created)
    aad = header + "\n".join(headers).encode()
    blob = header + ChaCha20Poly1305(key).encrypt(nonce, plaintext, aad)
    encoded = base64.b64encode(blob).decode()
    body = [encoded[i:i + 64] for i in range(0, len(encoded), 64)]
    return "\n".join([BEGIN, *headers, "", *body, END]) + "\n"


@dataclass(frozen=True)
class ArmoredKit:
    headers: list[str]
    blob: bytes
    recipient_fingerprint: str
    created: str


def _damaged(detail: str) -> RecoveryKitError:
    return RecoveryKitError(f"the recovery kit is damaged or truncated: {detail}",
                            "use another copy: each store holds one, and so does the printout")


def parse_armor(text: str) -> ArmoredKit:
    """Find and strictly parse the armored block. Inside the block every byte matters."""
    lines = text.split("\n")
    try:
        start = lines.index(BEGIN)
    except ValueError:
        raise _damaged(f"no line {BEGIN!r} found") from None
    try:
        end = lines.index(END, start + 1)
    except ValueError:
        raise _damaged(f"no line {END!r} after the start") from None
    block = lines[start + 1:end]
    if len(block) < 5 or block[3] != "":
        raise _damaged("the header lines are not as written")
    headers = block[:3]
    version, recipient, created = (h.partition(": ") for h in headers)
    if version[0] != "Version" or recipient[0] != "Recipient" or created[0] != "Created":
        raise _damaged("the header lines are not as written")
    if version[2] != str(VERSION):
        raise RecoveryKitError(f"recovery kit format version {version[2]!r} is not supported",
                               f"this drbackup reads version {VERSION}; use a matching release")
    if not _FINGERPRINT.fullmatch(recipient[2]) or not _CREATED.fullmatch(created[2]):
        raise _damaged("the header lines are not as written")
    body = block[4:]
    if any(len(line) != 64 for line in body[:-1]) or not body[-1] or len(body[-1]) > 64:
        raise _damaged("the encoded lines have the wrong length")
    encoded = "".join(body)
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise _damaged("the encoded text is not valid base64") from None
    if base64.b64encode(blob).decode() != encoded:  # unused low bits of the last character
        raise _damaged("the encoded text is not in canonical form")
    return ArmoredKit(headers, blob, recipient[2], created[2])


def open_sealed(text: str, identity: Identity) -> bytes:
    """The plaintext of an armored kit. Raises RecoveryKitError for a wrong identity, a damaged
    or truncated kit, or an unknown format."""
    kit = parse_armor(text)
    blob = kit.blob
    if len(blob) < HEADER_SIZE + TAG_SIZE:
        raise _damaged("it is shorter than its header")
    if blob[:len(MAGIC)] != MAGIC:
        raise _damaged("the magic bytes are wrong")
    offset = len(MAGIC)
    version, suite = blob[offset], blob[offset + 1]
    if version != VERSION or suite != SUITE_X25519_HKDF_CHACHA:
        raise RecoveryKitError(f"recovery kit format {version}/{suite} is not supported",
                               f"this drbackup reads format {VERSION}/{SUITE_X25519_HKDF_CHACHA}")
    offset += 2
    recipient_hash = blob[offset:offset + 32]
    ephemeral_raw = blob[offset + 32:offset + 64]
    nonce = blob[offset + 64:offset + 76]
    header = blob[:HEADER_SIZE]
    if "SHA256:" + recipient_hash.hex() != kit.recipient_fingerprint:
        raise _damaged("the recipient in the header and in the data differ")
    if kit.recipient_fingerprint != identity.fingerprint:
        raise RecoveryKitError(
            f"this kit is sealed to key {kit.recipient_fingerprint[:23]}..., but the identity "
            f"is {identity.fingerprint[:23]}...",
            "use the identity file whose fingerprint the printout states")
    try:
        ephemeral = X25519PublicKey.from_public_bytes(ephemeral_raw)
        key = _derive(identity.private.exchange(ephemeral), ephemeral_raw, identity.public_raw)
        aad = header + "\n".join(kit.headers).encode()
        return ChaCha20Poly1305(key).decrypt(nonce, blob[HEADER_SIZE:], aad)
    except (InvalidTag, ValueError):
        raise _damaged("authentication failed (a byte was changed, or it was cut short)"
                       ) from None
