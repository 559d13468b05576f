"""The file formats of a bench.guard_corpus share: `build(kind, rng, size)` makes one file's
bytes, a real format written by the library that writes it (zipfile for the OOXML office
containers, fpdf2, Pillow, sqlite3, gzip, csv, json) or by the format's own structure (ELF shared
objects, MP4 boxes, a mysqldump-style dump). bench.guard_workloads uses it for new versions.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import random
import sqlite3
import struct
import textwrap
import zipfile
from collections.abc import Callable
from pathlib import Path
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont

from bench.guard_text import (
    CSV_HEADERS,
    DEPTS,
    IDENTS,
    SQL_TABLES,
    TOPICS,
    VERBS,
    WORDS,
    csv_rows,
    log_text,
    paragraphs,
    person,
    sentence,
    sql_row,
    when,
)

KiB, MiB = 1024, 1024 * 1024


def noise(rng: random.Random, n: int) -> bytes:
    """`n` random-looking bytes from the rng, 10 times faster than randbytes: an AES-CTR
    keystream under a key drawn from it."""
    key, nonce = rng.randbytes(32), rng.randbytes(16)
    return Cipher(algorithms.AES(key), modes.CTR(nonce)).encryptor().update(bytes(n))


def _fit(rng: random.Random, size: int, make: Callable[[random.Random, int], bytes],
         guess: float, slack: float = .25) -> bytes:
    """make(rng, n) with n units (rows, paragraphs, pixels) scaled so its bytes come near `size`:
    one try at `guess`, a corrected one when that is off by more than `slack`."""
    seed, n = rng.getrandbits(64), max(1, round(guess))
    data = make(random.Random(seed), n)
    if abs(len(data) - size) > size * slack:
        data = make(random.Random(seed), max(1, round(n * size / max(1, len(data)))))
    return data


# Plain text: logs, CSV, SQL dumps, prose, markdown, JSON, source code.

def _csv(rng: random.Random, size: int) -> bytes:
    schema = rng.choice(list(CSV_HEADERS))
    parts, total = [",".join(CSV_HEADERS[schema]) + "\n"], 0
    while total < size:
        parts.append(csv_rows(rng, schema, 1 + 400 * (len(parts) - 1), 400))
        total += len(parts[-1])
    return "".join(parts).encode()[:size].rsplit(b"\n", 1)[0] + b"\n"


def sql_dump(rng: random.Random, size: int) -> bytes:
    out = ["-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n--\n-- Host: db01    "
           f"Database: {rng.choice(('crm', 'cases', 'permits'))}\n-- {'-' * 56}\n\n"]
    for table, columns in SQL_TABLES.items():
        out.append(f"DROP TABLE IF EXISTS `{table}`;\nCREATE TABLE `{table}` ({columns}, PRIMARY "
                   f"KEY (`id`)) ENGINE=InnoDB;\nLOCK TABLES `{table}` WRITE;\n")
        count = max(2, size // len(SQL_TABLES) // 95)
        for first in range(1, count + 1, 100):
            last = min(count + 1, first + 100)
            rows = ",".join(sql_row(rng, table, i) for i in range(first, last))
            out.append(f"INSERT INTO `{table}` VALUES {rows};\n")  # noqa: S608 (a dump's text)
        out.append("UNLOCK TABLES;\n\n")
    return "".join([*out, f"-- Dump completed on {when(rng):%Y-%m-%d %H:%M:%S}\n"]).encode()


def _txt(rng: random.Random, size: int) -> bytes:
    head = (f"MEMO\nTo: {person(rng)}\nFrom: {person(rng)}\nDate: {when(rng):%d %B %Y}\n"
            f"Subject: {rng.choice(TOPICS)}\n\n")
    body = "\n\n".join(textwrap.fill(p, 78) for p in paragraphs(rng, size - len(head)))
    return (head + body).encode()[:size] + b"\n"


def _md(rng: random.Random, size: int) -> bytes:
    out = [f"# {rng.choice(TOPICS).title()}\n"]
    while sum(map(len, out)) < size:
        out += [f"\n## {sentence(rng)[:-1]}\n\n", *(p + "\n\n" for p in paragraphs(rng, 400)),
                *(f"- {sentence(rng)}\n" for _ in range(rng.randint(2, 6))),
                "\n| item | owner | due |\n|---|---|---|\n",
                *(f"| {rng.choice(IDENTS)} | {person(rng)} | {when(rng):%Y-%m-%d} |\n"
                  for _ in range(rng.randint(2, 5)))]
    return "".join(out).encode()


def _json(rng: random.Random, n: int) -> bytes:
    items = [{"id": i, "name": person(rng), "department": rng.choice(list(DEPTS)),
              "active": rng.random() < .8, "tags": rng.sample(IDENTS, 3),
              "updated": f"{when(rng):%Y-%m-%dT%H:%M:%SZ}", "score": round(rng.random() * 100, 2)}
             for i in range(n)]
    return json.dumps({"version": rng.randint(1, 9), "items": items}, indent=2).encode()


CODE = {
    "py": ('def {f}({a}, {b}=None):\n    """{doc}"""\n    result = []\n    for item in {a}:\n'
           '        if item.get("{k}") == {b}:\n            result.append(item["{k}"])\n'
           '    return result\n',
           'class {C}:\n    """{doc}"""\n\n    def __init__(self, {a}, {b}):\n        self.{a} = '
           '{a}\n        self.{b} = {b}\n\n    def {f}(self):\n        return self.{a} * {n}\n'),
    "js": ("export function {f}({a}, {b}) {{\n  // {doc}\n  const result = [];\n  for (const "
           "item of {a}) {{\n    if (item.{k} === {b}) result.push(item);\n  }}\n  return result;"
           "\n}}\n",
           "async function {f}({a}) {{\n  const res = await fetch(`/api/{k}/${{{a}}}`);\n  if "
           "(!res.ok) throw new Error('{doc}');\n  return (await res.json()).slice(0, {n});\n}}\n")}


def _code(rng: random.Random, size: int, kind: str) -> bytes:
    out = ['"""' + sentence(rng) + '"""\n\nimport os\n' if kind == "py" else "'use strict';\n"]
    while sum(map(len, out)) < size:
        a, b, k = rng.sample(IDENTS, 3)
        out.append("\n\n" + rng.choice(CODE[kind]).format(
            f=f"{rng.choice(VERBS)}_{k}", C=f"{k.title()}{rng.choice(('Store', 'Client', 'View'))}",
            a=a, b=b, k=k, n=rng.randint(2, 500), doc=sentence(rng)))
    return "".join(out).encode()


# Binary formats by their own structure: ELF shared objects and MP4 video.

def _elf(rng: random.Random, size: int) -> bytes:
    chunks = [rng.randbytes(rng.randint(2, 12)) for _ in range(300)]  # an "instruction set"
    names = "\0".join(f"{rng.choice(VERBS)}_{rng.choice(IDENTS)}" for _ in range(size // 300))
    head = struct.pack("<4s5B7xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, 3, 0x3E, 1, 0x1040,
                       64, max(0, size - 1600), 0, 64, 56, 4, 64, 25, 24)
    phdrs = b"".join(struct.pack("<IIQQQQQQ", 1, 5, 4096 * i, 4096 * i, 4096 * i, size // 4,
                                 size // 4, 4096) for i in range(4))
    return (head + phdrs + b"".join(rng.choices(chunks, k=size // 9)) + bytes(rng.randint(64, 512))
            + names.encode() + bytes(size))[:size]


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _mp4(rng: random.Random, size: int) -> bytes:
    ftyp = _box(b"ftyp", b"isom\0\0\2\0isomiso2avc1mp41")
    stamp = int(when(rng).timestamp()) + 2082844800  # MP4 counts seconds from 1904
    moov = _box(b"moov", _box(b"mvhd", struct.pack(">5I", 0, stamp, stamp, 1000, 90000)
                              + bytes(80)) + _box(b"trak", _box(b"tkhd", bytes(84))))
    return ftyp + _box(b"mdat", noise(rng, max(0, size - len(ftyp) - len(moov) - 8))) + moov


# Images (Pillow) and PDF (fpdf2).

FONT = ImageFont.load_default_imagefont()  # the bitmap font: 20 times faster than FreeType


def photo(rng: random.Random, w: int, h: int) -> Image.Image:
    """A photo-like image: smooth colour fields, mid-frequency detail and sensor noise."""
    def layer(x: int, y: int) -> Image.Image:
        return Image.frombytes("RGB", (x, y), noise(rng, x * y * 3))
    fields = Image.blend(layer(6, 4).resize((48, 32), Image.Resampling.BICUBIC), layer(48, 32),
                         rng.uniform(.2, .45))
    return Image.blend(fields.resize((w, h), Image.Resampling.BICUBIC), layer(w, h),
                       rng.uniform(.08, .2))


def _jpeg(rng: random.Random, pixels: int) -> bytes:
    w = max(64, int(math.sqrt(pixels * 4 / 3)))
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = rng.choice((("Canon", "EOS 250D"), ("NIKON", "D5600"),
                                             ("Apple", "iPhone 13"), ("samsung", "SM-A536B")))
    exif[0x0132] = f"{when(rng):%Y:%m:%d %H:%M:%S}"
    buf = io.BytesIO()
    photo(rng, w, max(48, w * 3 // 4)).save(buf, "JPEG", quality=rng.randint(80, 92), exif=exif)
    return buf.getvalue()


def jpeg(rng: random.Random, size: int) -> bytes:
    return _fit(rng, size, _jpeg, size / .25, slack=.4)


def png(rng: random.Random, size: int) -> bytes:
    """A chart, diagram or screenshot: flat shapes and text, part of it a photo (large ones)."""
    share = rng.choice((.3, .6, .8) if size > 60 * KiB else (0, 0, .3))
    ratio = rng.choice((3 / 4, 9 / 16))

    def make(r: random.Random, pixels: int) -> bytes:
        w = int(min(1920, max(48, math.sqrt(pixels / ratio))))
        img = Image.new("RGB", (w, int(w * ratio)), (r.randint(200, 255), r.randint(200, 255), 250))
        draw = ImageDraw.Draw(img)
        for _ in range(r.randint(4, 14)):
            x, y = r.randrange(img.width), r.randrange(img.height)
            draw.rectangle((x, y, x + r.randint(20, 300), y + r.randint(10, 200)), outline=40,
                           fill=(r.randrange(256), r.randrange(256), r.randrange(256)))
        for y in range(20, img.height - 20, r.randint(18, 40)):
            draw.text((r.randint(10, 60), y), sentence(r)[:60], fill=(20, 20, 20), font=FONT)
        if share:
            patch = photo(r, int(w * share), int(img.height * share))
            img.paste(patch, (r.randint(0, w - patch.width),
                              r.randint(0, img.height - patch.height)))
        buf = io.BytesIO()
        img.save(buf, "PNG", compress_level=6)
        return buf.getvalue()
    return _fit(rng, size, make, size / (.2 + 1.8 * share * share))


def _scan_page(rng: random.Random) -> bytes:
    page = Image.new("L", (827, 1169), rng.randint(225, 250))  # A4 at 100 dpi
    draw = ImageDraw.Draw(page)
    for y in range(80, 1080, 22):
        draw.text((70, y), sentence(rng)[:95], fill=rng.randint(10, 60), font=FONT)
    grain = Image.frombytes("L", page.size, noise(rng, 827 * 1169))
    buf = io.BytesIO()
    Image.blend(page, grain, rng.uniform(.04, .1)).save(buf, "JPEG", quality=75)
    return buf.getvalue()


def pdf(rng: random.Random, size: int) -> bytes:
    """A text report (pages of prose, a photo when large) or a scan (a JPEG per page)."""
    doc = FPDF(unit="mm", format="A4")
    doc.set_creation_date(when(rng))
    doc.set_title(rng.choice(TOPICS).title())
    doc.set_author(person(rng))
    if size > 100 * KiB and rng.random() < 0.5:
        for _ in range(max(1, min(6, round(size / (190 * KiB))))):
            doc.add_page()
            doc.image(io.BytesIO(_scan_page(rng)), x=0, y=0, w=210)
        return bytes(doc.output())
    pages = max(1, min(10, size // (2 * KiB)))  # about 2 KiB a page of text
    rest = size - pages * 2 * KiB
    picture = jpeg(rng, rest) if rest > 8 * KiB else None
    for page in range(pages):
        doc.add_page()
        doc.set_font("Helvetica", "B", 15)
        doc.text(20, 22, sentence(rng)[:60])
        doc.set_font("Helvetica", size=10)
        for i, line in enumerate(textwrap.wrap(" ".join(paragraphs(rng, 3000)), 95)[:52]):
            doc.text(20, 34 + i * 4.8, line)  # text(), not multi_cell(): 30 times faster
        if picture and page == 0:
            doc.add_page()
            doc.image(io.BytesIO(picture), x=20, y=30, w=170)
    return bytes(doc.output())


# Office Open XML (docx, xlsx, pptx): zip packages of XML parts.

XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
OD, PKG = ("http://schemas.openxmlformats.org/officeDocument/2006",
           "http://schemas.openxmlformats.org/package/2006")
OFFICE = "application/vnd.openxmlformats-officedocument"
Part = tuple[str, str, str | bytes]  # name, content type ("" for a default one), data


def rels(targets: list[tuple[str, str]]) -> str:
    """A relationships part: (type, target) pairs, the type a full URI or one of OD's."""
    uris = [kind if ":" in kind else f"{OD}/relationships/{kind}" for kind, _ in targets]
    items = "".join(f'<Relationship Id="rId{i}" Type="{uri}" Target="{target}"/>'
                    for i, (uri, (_, target)) in enumerate(zip(uris, targets, strict=True), 1))
    return f'{XML}<Relationships xmlns="{PKG}/relationships">{items}</Relationships>'


def ooxml(rng: random.Random, app: str, parts: list[Part]) -> bytes:
    """An Office package: content types first, package relationships (to parts[0], the main
    document, and the core properties), core properties, then the parts."""
    stamp = when(rng)
    parts = [*parts, ("docProps/core.xml", "application/vnd.openxmlformats-package.core-"
                      "properties+xml", f'{XML}<cp:coreProperties xmlns:cp="{PKG}/metadata/core-'
                      'properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>'
                      f'{rng.choice(TOPICS)}</dc:title><dc:creator>{person(rng)}</dc:creator>'
                      f'<cp:lastModifiedBy>{app}</cp:lastModifiedBy></cp:coreProperties>')]
    types = "".join(f'<Override PartName="/{name}" ContentType="{kind}"/>'
                    for name, kind, _ in parts if kind)
    defaults = "".join(f'<Default Extension="{ext}" ContentType="{kind}"/>' for ext, kind in (
        ("rels", "application/vnd.openxmlformats-package.relationships+xml"),
        ("xml", "application/xml"), ("jpeg", "image/jpeg")))
    package = rels([("officeDocument", parts[0][0]),
                    (f"{PKG}/relationships/metadata/core-properties", "docProps/core.xml")])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in [("[Content_Types].xml", f'{XML}<Types xmlns="{PKG}/content-types">'
                            f'{defaults}{types}</Types>'), ("_rels/.rels", package),
                           *((name, data) for name, _, data in parts)]:
            archive.writestr(zipfile.ZipInfo(name, stamp.timetuple()[:6]), data,
                             zipfile.ZIP_DEFLATED)
    return buf.getvalue()


W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def w_paragraph(text: str, style: str | None = None) -> str:
    ppr = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
    return f'<w:p>{ppr}<w:r><w:t xml:space="preserve">{escape(text)}</w:t></w:r></w:p>'


def docx(rng: random.Random, size: int, texts: list[str] | None = None) -> bytes:
    """A Word document of `texts` (generated prose when None), with a picture when large."""
    picture = jpeg(rng, int(size * rng.uniform(.5, .8))) if size > 40 * KiB else b""
    media: list[Part] = [("word/media/image1.jpeg", "", picture)] if picture else []
    links = [("styles", "styles.xml")] + ([("image", "media/image1.jpeg")] if picture else [])

    def make(r: random.Random, n: int) -> bytes:
        body = "".join(w_paragraph(p, "Heading1" if r.random() < .12 else None)
                       for p in (texts or paragraphs(r, n)))
        return ooxml(r, "Microsoft Office Word", [
            ("word/document.xml", f"{OFFICE}.wordprocessingml.document.main+xml",
             f'{XML}<w:document {W}><w:body>{w_paragraph(sentence(r), "Title")}{body}<w:sectPr/>'
             "</w:body></w:document>"),
            ("word/styles.xml", f"{OFFICE}.wordprocessingml.styles+xml", f'{XML}<w:styles {W}>'
             '<w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/>'
             "</w:style></w:styles>"),
            ("word/_rels/document.xml.rels", "", rels(links)), *media])
    return _fit(rng, size, make, max(1, size - len(picture)) * 4.5)


def xlsx(rng: random.Random, size: int) -> bytes:
    schema = rng.choice(list(CSV_HEADERS))

    def cell(ref: str, value: str) -> str:
        if value.replace(".", "", 1).isdigit():
            return f'<c r="{ref}"><v>{value}</v></c>'
        return f'<c r="{ref}" t="inlineStr"><is><t>{escape(value)}</t></is></c>'

    def make(r: random.Random, n: int) -> bytes:
        table = [CSV_HEADERS[schema], *csv.reader(io.StringIO(csv_rows(r, schema, 1, n)))]
        rows = "".join(f'<row r="{i}">' + "".join(cell(f"{chr(65 + j)}{i}", v) for j, v in
                                                  enumerate(row)) + "</row>"
                       for i, row in enumerate(table, 1))
        ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
        return ooxml(r, "Microsoft Excel", [
            ("xl/workbook.xml", f"{OFFICE}.spreadsheetml.sheet.main+xml", f'{XML}<workbook {ns} '
             f'xmlns:r="{OD}/relationships"><sheets><sheet name="{schema}" sheetId="1" r:id='
             '"rId1"/></sheets></workbook>'),
            ("xl/worksheets/sheet1.xml", f"{OFFICE}.spreadsheetml.worksheet+xml",
             f"{XML}<worksheet {ns}><sheetData>{rows}</sheetData></worksheet>"),
            ("xl/_rels/workbook.xml.rels", "", rels([("worksheet", "worksheets/sheet1.xml")]))])
    return _fit(rng, size, make, size / (66 if schema == "invoices" else 34))


def pptx(rng: random.Random, size: int) -> bytes:
    """A slide deck: 4-14 slides of text, with three pictures when large."""
    ns = ('xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" xmlns:a="http://'
          f'schemas.openxmlformats.org/drawingml/2006/main" xmlns:r="{OD}/relationships"')
    count = rng.randint(4, 14)
    slides: list[Part] = [(f"ppt/slides/slide{i}.xml", f"{OFFICE}.presentationml.slide+xml",
                           f"{XML}<p:sld {ns}><p:cSld><p:spTree><p:sp><p:txBody>" + "".join(
                               f"<a:p><a:r><a:t>{escape(sentence(rng))}</a:t></a:r></a:p>"
                               for _ in range(rng.randint(2, 7))) +
                           "</p:txBody></p:sp></p:spTree></p:cSld></p:sld>")
                          for i in range(1, count + 1)]
    pictures = min(3, max(0, (size - 8 * KiB) // (10 * KiB)))
    media: list[Part] = [(f"ppt/media/image{i}.jpeg", "", jpeg(rng, (size - 8 * KiB) // pictures))
                         for i in range(1, pictures + 1)]
    ids = "".join(f'<p:sldId id="{255 + i}" r:id="rId{i}"/>' for i in range(1, count + 1))
    return ooxml(rng, "Microsoft Office PowerPoint", [
        ("ppt/presentation.xml", f"{OFFICE}.presentationml.presentation.main+xml",
         f'{XML}<p:presentation {ns}><p:sldIdLst>{ids}</p:sldIdLst><p:sldSz cx="12192000" '
         'cy="6858000"/></p:presentation>'),
        ("ppt/_rels/presentation.xml.rels", "",
         rels([("slide", f"slides/slide{i}.xml") for i in range(1, count + 1)])),
        *slides, *media])


def sqlite_db(rng: random.Random, rows: int) -> bytes:
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT, email TEXT, city TEXT)")
    con.execute("CREATE TABLE bookings(id INTEGER PRIMARY KEY, customer_id INTEGER, room TEXT, "
                "starts TEXT, hours REAL, note TEXT)")
    con.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)", (
        (i, person(rng), f"user{i}@mail.example", rng.choice(WORDS)) for i in range(rows // 4 + 1)))
    con.executemany("INSERT INTO bookings VALUES (?, ?, ?, ?, ?, ?)", (
        (i, rng.randint(1, rows // 4 + 1), f"Room {rng.randint(1, 40)}", f"{when(rng):%F %T}",
         rng.randint(1, 16) / 2, " ".join(rng.choices(WORDS, k=rng.randint(0, 8))))
        for i in range(rows)))
    con.commit()
    data = bytearray(con.serialize())
    con.close()
    counter, (x, y, z) = struct.pack(">I", rng.randint(2, 900)), sqlite3.sqlite_version_info
    data[24:28] = data[92:96] = counter  # as a file written that many times by this SQLite
    data[96:100] = struct.pack(">I", x * 1_000_000 + y * 1000 + z)
    return bytes(data)


BUILDERS: dict[str, Callable[[random.Random, int], bytes]] = {
    "docx": docx, "xlsx": xlsx, "pptx": pptx, "pdf": pdf, "jpg": jpeg, "png": png, "txt": _txt,
    "md": _md, "csv": _csv, "log": lambda r, n: log_text(r, n).encode(),
    "json": lambda r, n: _fit(r, n, _json, n / 260), "sql": sql_dump,
    "py": lambda r, n: _code(r, n, "py"), "js": lambda r, n: _code(r, n, "js"),
    "gz": lambda r, n: _fit(r, n, lambda q, m: gzip.compress(
        log_text(q, m).encode(), mtime=int(when(q).timestamp())), n * 5.2),
    "sqlite": lambda r, n: _fit(r, n, sqlite_db, n / 95), "so": _elf, "mp4": _mp4}
KINDS = tuple(BUILDERS)
SUFFIXES = {".jpeg": "jpg", **{f".{kind}": kind for kind in KINDS}}


def build(kind: str, rng: random.Random, size: int) -> bytes:
    """One file of `kind` (one of KINDS) of about `size` bytes."""
    return BUILDERS[kind](rng, max(512, size))


def kind_of(path: Path) -> str | None:
    return SUFFIXES.get(path.suffix.lower())
