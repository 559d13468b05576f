"""QR payloads of a sealed kit: split and joined back exactly, in any order; every way the
scanned parts can be wrong is one clear error."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys

import pytest
import segno

from drbackup.recovery import qrparts
from drbackup.recovery.sealing import Recipient, RecoveryKitError, generate_identity, seal


def _armored(size: int = 1500) -> str:
    recipient = Recipient(generate_identity().private.public_key())
    return seal(os.urandom(size), recipient, "2026-11-28T12:00:00+00:00")


def test_parts_join_back_to_the_armored_kit_in_any_order() -> None:
    armored = _armored()
    parts = qrparts.split(armored)
    assert len(parts) >= 2
    shuffled = parts[:]
    random.Random(1).shuffle(shuffled)
    scanned = "\n".join(["", "some other barcode", *shuffled, shuffled[0],
                         f"QR-Code:{parts[-1]}", ""])  # repeats and zbarimg's prefix are fine
    assert qrparts.join(scanned) == armored


def test_each_part_is_an_alphanumeric_qr_code_of_version_20_at_level_q() -> None:
    for part in qrparts.split(_armored(4000)):
        assert re.fullmatch(r"[0-9A-Z $%*+\-./:]+", part)
        code = segno.make(part, error="q", boost_error=False, micro=False)
        assert code.designator.endswith("-Q")
        assert int(code.designator.split("-")[0]) <= 20


def test_a_small_kit_is_one_part() -> None:
    parts = qrparts.split(_armored(100))
    assert len(parts) == 1 and parts[0].startswith("DRBK1:1/1:")


def _fails(text: str, message: str) -> None:
    with pytest.raises(RecoveryKitError) as caught:
        qrparts.join(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_wrong_scans_are_named() -> None:
    parts = qrparts.split(_armored(3000))
    count = len(parts)
    assert count >= 3
    other = qrparts.split(_armored(3000))
    _fails("\n".join(parts[1:]), f"part 1 of {count} is missing")
    _fails("\n".join(parts[:1]), "are missing")
    _fails("\n".join([*parts, other[1]]), "come from different kits")
    header, _, data = parts[1].rpartition(":")
    changed = f"{header}:{'B' if data[0] == 'A' else 'A'}{data[1:]}"
    _fails("\n".join([*parts, changed]), f"part 2 of {count} was scanned twice with different")
    _fails("\n".join([changed if p == parts[1] else p for p in parts]),
           "do not match their checksum")
    recount = parts[0].replace(f"/{count}:", f"/{count + 1}:", 1)
    _fails("\n".join([recount, *parts[1:]]), "disagree on the number of parts")
    _fails(parts[0].replace("DRBK1:1/", "DRBK1:0/", 1), "out of range")
    _fails("DRBK1:1/2:nothex:DATA", "not a valid drbackup QR part")
    _fails("hello\nworld\n", "no drbackup QR part found")


def test_pdf_packages_load_only_when_a_pdf_is_made() -> None:
    """Opening a kit (even from scanned codes) and every other verb start without fpdf2/segno."""
    code = ("import sys, drbackup.cli.main, drbackup.recovery.kit, drbackup.recovery.qrparts;"
            "print(sorted(m for m in ('fpdf', 'segno', 'PIL') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
