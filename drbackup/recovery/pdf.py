"""The printable recovery kit as a PDF: the text document's instructions and contents, the sealed
kit as QR codes (drbackup.recovery.qrparts), and the armored text to type in when no scanner
works. fpdf2 and segno are imported here only, and this module only by `recovery-kit create
--pdf`, so no other verb pays for them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from drbackup.recovery.qrparts import split

if TYPE_CHECKING:
    from fpdf import FPDF

ERROR_LEVEL = "q"  # about 25% of a code may be damaged or dirty and it still reads
MODULE_MM = 0.6  # one QR module: a version-20 code is 97 modules = 58 mm, plus the quiet zone
QUIET = 4  # modules of white around each code (the QR standard's minimum)
MARGIN = 15.0
LINE = 4.6


def _latin1(text: str) -> str:
    """The PDF core fonts are Latin-1: anything else is shown as '?' (ids are ASCII)."""
    return text.encode("latin-1", "replace").decode("latin-1")


def _text(pdf: FPDF, lines: list[str], *, font: str, size: float, height: float = LINE) -> None:
    from fpdf.enums import XPos, YPos

    for line in lines:
        pdf.set_font(font, size=size)
        width = pdf.get_string_width(_latin1(line))
        if width > pdf.epw:  # a long line (the spaced fingerprint) shrinks rather than wraps
            pdf.set_font(font, size=size * pdf.epw / width * 0.98)
        pdf.cell(0, height, _latin1(line), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _side(rows: list[list[bool]]) -> float:
    return (len(rows) + 2 * QUIET) * MODULE_MM


def _draw_qr(pdf: FPDF, rows: list[list[bool]], x: float, y: float) -> None:
    """Draw one code (its module rows) with its top-left corner, quiet zone included, at x, y."""
    origin_x, origin_y = x + QUIET * MODULE_MM, y + QUIET * MODULE_MM
    overlap = 0.02  # rectangles overlap a hair so no seam shows between rows when rendered
    for r, row in enumerate(rows):
        c = 0
        while c < len(row):
            if not row[c]:
                c += 1
                continue
            start = c
            while c < len(row) and row[c]:
                c += 1
            pdf.rect(origin_x + start * MODULE_MM, origin_y + r * MODULE_MM,
                     (c - start) * MODULE_MM + overlap, MODULE_MM + overlap, style="F")


def render(armored: str, document_lines: list[str], name: str, stamp: list[str]) -> bytes:
    """The PDF's bytes. `stamp` (recipient fingerprint, date) is repeated on the pages of codes
    and of armored text, so a page that got separated still says which kit it belongs to."""
    import segno
    from fpdf import FPDF

    parts = split(armored)
    codes = [[[bool(m) for m in row] for row in segno.make(
        payload, error=ERROR_LEVEL, boost_error=False, micro=False).matrix_iter(scale=1, border=0)]
        for payload in parts]
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_title(_latin1(name))
    pdf.set_creator("drbackup recovery-kit create --pdf")
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.set_auto_page_break(True, margin=MARGIN)
    pdf.add_page()
    _text(pdf, document_lines[:1], font="Helvetica", size=14, height=7)
    _text(pdf, document_lines[2:], font="Helvetica", size=10)

    # The QR codes: two a row, each captioned "part i of n".
    pdf.add_page()
    _text(pdf, [f"{name}: the sealed kit as {len(parts)} QR code{'s' if len(parts) > 1 else ''}"
                " (scan all of them, in any order)",
                "zbarimg --raw -q PAGE.png >> parts.txt   then   "
                "drbackup recovery-kit open --kit parts.txt ...", *stamp],
          font="Helvetica", size=10)
    width = pdf.w - 2 * MARGIN
    column = width / 2
    y = pdf.get_y() + 3
    for first in range(0, len(codes), 2):
        pair = codes[first:first + 2]
        row_height = max(_side(rows) for rows in pair) + LINE + 4
        if y + row_height > pdf.h - MARGIN:
            pdf.add_page()
            y = MARGIN
        for offset, rows in enumerate(pair):
            side = _side(rows)
            _draw_qr(pdf, rows, MARGIN + offset * column + (column - side) / 2, y)
            pdf.set_xy(MARGIN + offset * column, y + side)
            pdf.set_font("Helvetica", style="B", size=10)
            pdf.cell(column, LINE, f"part {first + offset + 1} of {len(parts)}", align="C")
        y += row_height

    # The armored kit, to type in when nothing can scan.
    pdf.add_page()
    _text(pdf, ["If no code can be scanned: type the block below (BEGIN to END lines, exactly)",
                f"into {name}.kit. Every character counts; a typo is reported, not ignored.",
                *stamp, ""],
          font="Helvetica", size=10)
    _text(pdf, armored.rstrip("\n").split("\n"), font="Courier", size=9, height=4.2)
    return bytes(pdf.output())

