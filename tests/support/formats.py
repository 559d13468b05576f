"""Real files of real formats, made with the standard library, and the ways ransomware encrypts
them (#16): whole, the first MiB only, every n-th block. For the guard's content tests."""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import sqlite3
import struct
import zipfile
import zlib
from pathlib import Path

KiB = 1024
MiB = 1024 * KiB


def noise(size: int, seed: int = 1) -> bytes:
    """Deterministic random-looking bytes (a SHAKE keystream)."""
    return hashlib.shake_256(f"noise-{seed}".encode()).digest(size)


def csv_text(rows: int, seed: int = 1) -> bytes:
    rnd = random.Random(seed)
    out = ["id,date,department,amount,note\n"]
    for i in range(rows):
        out.append(f"{i},2024-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d},"
                   f"{rnd.choice(['water', 'roads', 'health', 'parks'])},"
                   f"{rnd.randint(1, 99999) / 100:.2f},invoice {rnd.randint(1000, 9999)}\n")
    return "".join(out).encode()


def prose(size: int, seed: int = 1) -> bytes:
    rnd = random.Random(seed)
    words = ["the", "council", "approved", "budget", "for", "road", "repairs", "water",
             "main", "district", "office", "residents", "meeting", "minutes", "report",
             "annual", "permit", "市政", "预算", "会议"]
    out: list[str] = []
    length = 0
    while length < size:
        line = " ".join(rnd.choice(words) for _ in range(12)) + ".\n"
        out.append(line)
        length += len(line.encode())
    return "".join(out).encode()[:size]


def source_code(size: int) -> bytes:
    unit = (b"def handler(event: dict[str, int]) -> int:\n"
            b"    total = 0\n    for key, value in sorted(event.items()):\n"
            b"        total += value * len(key)\n    return total\n\n")
    return (unit * (size // len(unit) + 1))[:size]


def office_zip(kind: str = "docx", payload: int = 200 * KiB) -> bytes:
    """A zip container with the member names of a .docx or .xlsx."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        z.writestr("_rels/.rels", '<?xml version="1.0"?><Relationships/>')
        if kind == "xlsx":
            z.writestr("xl/workbook.xml", '<?xml version="1.0"?><workbook/>')
            z.writestr("xl/worksheets/sheet1.xml", csv_text(payload // 40).decode())
        else:
            z.writestr("word/document.xml", prose(payload).decode(errors="ignore"))
        z.writestr("word/media/image1.bin", noise(payload // 2, seed=7),
                   compress_type=zipfile.ZIP_STORED)
    return buf.getvalue()


def random_zip(size: int = 300 * KiB) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("random.bin", noise(size, seed=3))
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(width: int = 256, height: int = 256) -> bytes:
    """A valid RGB PNG of noise: its IDAT is compressed random data."""
    pixels = noise(width * height * 3, seed=5)
    rows = b"".join(b"\x00" + pixels[y * width * 3:(y + 1) * width * 3] for y in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(rows, 9)) + _chunk(b"IEND", b""))


def jpeg(body: int = 200 * KiB) -> bytes:
    """A JFIF header (SOI, APP0, DQT, SOF0, SOS) then a random entropy-coded body with 0xFF
    bytes stuffed, then EOI."""
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    dqt = b"\x00" + bytes(range(1, 65))
    sof = struct.pack(">BHHB", 8, 480, 640, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    sos = b"\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00"

    def seg(marker: int, data: bytes) -> bytes:
        return bytes([0xFF, marker]) + struct.pack(">H", len(data) + 2) + data

    entropy = noise(body, seed=9).replace(b"\xff", b"\xff\x00")
    return (b"\xff\xd8" + seg(0xE0, app0) + seg(0xDB, dqt) + seg(0xC0, sof) + seg(0xDA, sos)
            + entropy + b"\xff\xd9")


def pdf(stream: bytes | None = None) -> bytes:
    """A minimal valid PDF: one page, its content stream deflated, a correct xref table."""
    content = zlib.compress(stream if stream is not None else prose(100 * KiB))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
               b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content)
               + content + b"\nendstream"]
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def sqlite_db(path: Path, rows: int = 20000) -> bytes:
    """A real SQLite database of records; returns its bytes."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE permits (id INTEGER PRIMARY KEY, owner TEXT, address TEXT, "
                   "fee REAL, issued TEXT)")
        db.executemany("INSERT INTO permits VALUES (?, ?, ?, ?, ?)",
                       [(i, f"owner {i % 977}", f"{i % 400} Main Street, district {i % 12}",
                         i * 1.25, f"2024-{i % 12 + 1:02d}-01") for i in range(rows)])
    db.close()
    return path.read_bytes()


def gzip_of(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


# How ransomware encrypts: XOR with a keystream is as random as any cipher's output.

def _xor(data: bytes, seed: int) -> bytes:
    key = noise(len(data), seed=seed)
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(len(data), "big")


def encrypt_whole(data: bytes, seed: int = 11) -> bytes:
    return _xor(data, seed)


def encrypt_head(data: bytes, size: int = MiB, seed: int = 12) -> bytes:
    return _xor(data[:size], seed) + data[size:]


def encrypt_every(data: bytes, every: int, block: int = 64 * KiB, seed: int = 13) -> bytes:
    """Intermittent encryption: block i is encrypted when i % every == every - 1, so the
    header block stays intact."""
    out = bytearray(data)
    for i, start in enumerate(range(0, len(data), block)):
        if i % every == every - 1:
            out[start:start + block] = _xor(bytes(out[start:start + block]), seed + i)
    return bytes(out)
