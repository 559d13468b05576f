"""The sealed kit as QR-code payloads, and back (standard library only: opening a kit from paper
needs no QR or PDF package, only the scanned text).

Payload format, version 1 — one line per QR code, every character in the QR alphanumeric set
(0-9, A-Z, space, $ % * + - . / :), so each code is encoded in alphanumeric mode:

    DRBK1:<i>/<n>:<checksum>:<data>

- `i` and `n` are decimal: this is part i of n (1 <= i <= n).
- `checksum` is the first 16 hex digits (upper case) of SHA-256 over the whole armored kit
  text, exactly the bytes of the `.kit` file; the same on every part of one kit, so parts of
  different kits are never mixed.
- `data` parts, concatenated in order 1..n, are the RFC 4648 base32 (upper case, without `=`
  padding) of zlib(armored kit text).

Reassembly: sort by i, check that every i in 1..n is there once (an identical repeat — the
same code scanned twice — is ignored), concatenate, base32-decode, inflate, compare the
checksum; the result is the armored kit, which is then opened as usual (its own authenticated
encryption is the real integrity check; the checksum names a misread part early and clearly).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import zlib

from drbackup.recovery.sealing import RecoveryKitError

PREFIX = "DRBK1:"
# Data characters per code: with the header (at most 29 characters for n <= 99) a part fits a
# version-20 QR code (97x97 modules) at error-correction level Q (about 25% of the code may be
# damaged), whose alphanumeric capacity is 702 characters.
PART_DATA = 660
MAX_PARTS = 99
_PART = re.compile(r"DRBK1:([0-9]{1,2})/([0-9]{1,2}):([0-9A-F]{16}):([A-Z2-7]+)")


def checksum(armored: str) -> str:
    return hashlib.sha256(armored.encode("utf-8")).hexdigest()[:16].upper()


def split(armored: str, part_data: int = PART_DATA) -> list[str]:
    """The QR payloads of an armored kit, in order."""
    data = base64.b32encode(zlib.compress(armored.encode("utf-8"), 9)).decode().rstrip("=")
    count = max(1, math.ceil(len(data) / part_data))
    if count > MAX_PARTS:
        raise ValueError(f"the kit needs {count} QR codes; at most {MAX_PARTS} are supported")
    size = math.ceil(len(data) / count)  # equal parts: every code about the same size
    total = checksum(armored)
    return [f"{PREFIX}{i + 1}/{count}:{total}:{data[i * size:(i + 1) * size]}"
            for i in range(count)]


def looks_like_parts(text: str) -> bool:
    return any(_strip(line).startswith(PREFIX) for line in text.splitlines())


def _strip(line: str) -> str:
    line = line.strip()
    # zbarimg without --raw prints "QR-Code:<payload>"
    return line.removeprefix("QR-Code:")


def _error(message: str, hint: str) -> RecoveryKitError:
    return RecoveryKitError(message, hint)


def join(text: str) -> str:
    """The armored kit from scanned payloads: one per line, any order; other lines (blank, or
    other barcodes on the page) are ignored. Raises RecoveryKitError for a malformed, missing,
    conflicting or altered part."""
    parts: dict[int, str] = {}
    total: int | None = None
    check: str | None = None
    scan_hint = "scan every QR code of the printout again (e.g. zbarimg --raw PAGE.png)"
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _strip(raw)
        if not line.startswith(PREFIX):
            continue
        match = _PART.fullmatch(line)
        if match is None:
            raise _error(f"line {number} is not a valid drbackup QR part (it starts with "
                         f"{PREFIX} but is not <i>/<n>:<checksum>:<base32 data>)", scan_hint)
        index, count, part_check, data = (int(match[1]), int(match[2]), match[3], match[4])
        if not 1 <= index <= count:
            raise _error(f"line {number}: part {index} of {count} is out of range", scan_hint)
        if check is not None and part_check != check:
            raise _error(f"the scanned parts come from different kits (checksums {check} and "
                         f"{part_check})", "scan only the codes of one printout")
        if total is not None and count != total:
            raise _error(f"the scanned parts disagree on the number of parts ({total} and "
                         f"{count})", "scan only the codes of one printout")
        check, total = part_check, count
        if index in parts and parts[index] != data:
            raise _error(f"part {index} of {count} was scanned twice with different content",
                         "keep one copy of each part: rescan that code")
        parts[index] = data
    if total is None or check is None:
        raise _error("no drbackup QR part found in the scanned text",
                     f"each scanned line starts with {PREFIX}; {scan_hint}")
    missing = [str(i) for i in range(1, total + 1) if i not in parts]
    if missing:
        raise _error(f"part{'s' if len(missing) > 1 else ''} {', '.join(missing)} of {total} "
                     f"{'are' if len(missing) > 1 else 'is'} missing", scan_hint)
    data = "".join(parts[i] for i in range(1, total + 1))
    mismatch = _error(f"the scanned parts do not match their checksum {check}: a part was "
                      "misread or altered", "rescan the codes, or type the printed armored "
                      "text instead")
    try:
        armored = zlib.decompress(base64.b32decode(data + "=" * (-len(data) % 8)))
        text_out = armored.decode("utf-8")
    except (binascii.Error, ValueError, zlib.error):
        raise mismatch from None
    if checksum(text_out) != check:
        raise mismatch
    return text_out
