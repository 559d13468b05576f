"""Reading a recovery kit's printout as the emergency team does: the signer's fingerprint is
the 'Signed by host key' line of the paper (the .txt document, or the PDF's first page)."""

from __future__ import annotations

from pathlib import Path

SIGNED_BY = "Signed by host key"


def printed_signer(document: Path) -> str:
    """The fingerprint after 'Signed by host key' in the printed .txt document, as printed
    (groups of four digits)."""
    for line in document.read_text(encoding="utf-8").splitlines():
        if line.startswith(SIGNED_BY):
            return line.removeprefix(SIGNED_BY).strip()
    raise AssertionError(f"{document} prints no '{SIGNED_BY}' line")
