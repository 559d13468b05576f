"""Does one file look encrypted? The content signal of the ransomware guard (#16), from the
file's name and a bounded read of it, with reasons a person can check.

Two tests, both on at most `budget` bytes:

- **magic mismatch**: the extension promises a format with a fixed signature (a `.docx` is a zip,
  a `.pdf` starts with `%PDF-`, ...; the table is data, `signatures.json`) and the signature is
  absent. Ransomware that encrypts in place keeps the name and destroys the header.
- **randomness**: a chi-square test of the byte frequencies of each window (below). Encrypted
  bytes are uniform; text, records and source code are far from it. Compressed and media formats
  are uniform too, so random windows only count where the format is known not to be random
  (text, CSV, source, SQLite); in a file of an unknown format they make the look "unknown".

Windows: a file no larger than the budget is read whole and cut into windows of WINDOW bytes.
A larger one is cut into budget // WINDOW equal strata with one window in each: the first at
the head, the last at the tail, the others at a pseudo-random (hashed, reproducible) offset
inside their stratum, so intermittent encryption (every n-th block) is not hidden by a period
that lines up with the windows. Files are opened with O_NOFOLLOW after an lstat: symlinks,
fifos, devices and files that vanish or cannot be read give `readable=False` and a reason;
`look` never raises.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections import Counter
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

KiB = 1024
DEFAULT_BUDGET = 256 * KiB
WINDOW = 8 * KiB
MIN_WINDOW = 4 * KiB  # below this, 16 expected counts per byte value: chi-square still holds
# Chi-square with 255 degrees of freedom: uniform (encrypted) bytes give 255 ± 23; the
# upper 0.01 % point is about 348. Text gives tens of thousands, deflate a few hundred to
# thousands. A window below the threshold is "random"; an encrypted window misses it about once
# in 10,000 windows, non-random data essentially never.
CHI_SQUARE_THRESHOLD = 350.0
# A text-format file too small for a window: share of bytes that text never holds (C0 controls
# other than NUL, tab, newlines, form feed and escape; DEL). Random bytes give about 10 %.
SMALL_TEXT_MIN = 256
CONTROL_SHARE = 0.05

Kind = Literal["ok", "encrypted", "unknown"]


@dataclass(frozen=True)
class Signature:
    magic: bytes
    offset: int | None = None  # exactly here
    within: int | None = None  # starting anywhere in the first `within` bytes

    @property
    def needs(self) -> int:
        """Head bytes needed to say the signature is absent."""
        return (self.offset if self.offset is not None else self.within or 0) + len(self.magic)

    def found(self, head: bytes) -> bool:
        if self.offset is not None:
            return head[self.offset:self.offset + len(self.magic)] == self.magic
        return self.magic in head[:(self.within or 0) + len(self.magic)]


@dataclass(frozen=True)
class Format:
    name: str
    signatures: tuple[Signature, ...]  # empty: not checked
    random_expected: bool
    text: bool = False


@cache
def formats() -> dict[str, Format]:
    """Extension (lower case, no dot) → the format it promises, from signatures.json."""
    raw: Any = json.loads(resources.files("drbackup.guard").joinpath("signatures.json")
                          .read_text(encoding="utf-8"))
    table: dict[str, Format] = {}

    def add(extensions: list[str], fmt: Format) -> None:
        for ext in extensions:
            if ext in table or ext != ext.lower() or "." in ext:
                raise ValueError(f"signatures.json: extension {ext!r} repeated or malformed")
            table[ext] = fmt

    for entry in raw["formats"]:
        sigs = tuple(Signature(bytes.fromhex(s["hex"]), s.get("offset"), s.get("within"))
                     for s in entry["signatures"])
        if not sigs or any((s.offset is None) == (s.within is None) for s in sigs):
            raise ValueError(f"signatures.json: {entry['name']}: each signature needs "
                             "exactly one of offset, within")
        add(entry["extensions"], Format(entry["name"], sigs, bool(entry["random_expected"])))
    add(raw["random_formats"]["extensions"], Format("compressed or media", (), True))
    add(raw["text_formats"]["extensions"], Format("text", (), False, text=True))
    return table


def format_for(name: str) -> tuple[str, Format] | None:
    """The rightmost known extension of a file name and its format: `report.csv.locked` is
    judged as `.csv`, `logs.tar.gz` as `.gz`; None when no extension is known."""
    parts = name.lstrip(".").lower().split(".")[1:]
    table = formats()
    for ext in reversed(parts):
        if ext in table:
            return ext, table[ext]
    return None


@dataclass(frozen=True)
class ContentLook:
    path: str
    readable: bool
    kind: Kind
    reasons: tuple[str, ...]
    size: int = 0
    bytes_read: int = 0
    extension: str | None = None  # the known extension the file was judged by
    format: str | None = None
    magic_mismatch: bool = False
    random_expected: bool = False
    windows: int = 0
    random_windows: int = 0
    chi_square: tuple[float, ...] = ()


def chi_square(window: bytes) -> float:
    """Pearson's chi-square of the byte counts against a uniform distribution (255 d.f.)."""
    n = len(window)
    if not n:
        return 0.0
    return 256 * sum(c * c for c in Counter(window).values()) / n - n


def plan(size: int, budget: int) -> list[tuple[int, int]]:
    """(offset, length) of the reads: the whole file when it fits the budget, else one window
    per stratum. The lengths never add up to more than the budget."""
    budget = max(0, budget)
    if size <= 0 or budget == 0:
        return []
    if size <= budget:
        return [(0, size)]
    if budget < WINDOW:
        return [(0, budget)]
    count = budget // WINDOW
    stratum = size / count
    reads = []
    for i in range(count):
        start, end = int(i * stratum), int((i + 1) * stratum)
        if i == 0:
            offset = 0
        elif i == count - 1:
            offset = size - WINDOW
        else:
            offset = start + int(_spread(size, i) * (end - start - WINDOW))
        reads.append((offset, WINDOW))
    return reads


def _spread(size: int, i: int) -> float:
    """Where in stratum i the window sits, in [0, 1): a hash of the file size and i, so the
    same file is read the same way and no block period lines up with the windows."""
    digest = hashlib.blake2b(f"{size}:{i}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _cut(data: bytes) -> list[bytes]:
    """A whole file's bytes as windows of WINDOW bytes; a short remainder joins the last."""
    if len(data) < MIN_WINDOW:
        return []
    cuts = list(range(0, len(data), WINDOW))
    if len(data) - cuts[-1] < MIN_WINDOW and len(cuts) > 1:
        cuts.pop()
    return [data[a:b] for a, b in zip(cuts, [*cuts[1:], len(data)], strict=True)]


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


def _type_of(mode: int) -> str:
    for test, what in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISFIFO, "a fifo"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return what
    return "not a regular file"


def _unreadable(path: Path, reason: str, size: int = 0) -> ContentLook:
    return ContentLook(path=str(path), readable=False, kind="unknown", reasons=(reason,),
                       size=size)


def _parent_fd(path: Path) -> int:
    """A descriptor of path's directory, reached from / one component at a time with
    O_NOFOLLOW: a directory swapped for a link after restic read it (to another agency's tree)
    fails here instead of being followed. Raises OSError (ELOOP or ENOTDIR for a link)."""
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in path.parent.parts[1:]:
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                          dir_fd=fd)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open(path: Path) -> int:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    parent = _parent_fd(path) if path.is_absolute() else None
    try:
        noatime = getattr(os, "O_NOATIME", 0)
        if noatime:
            try:
                return os.open(path.name if parent is not None else path, flags | noatime,
                               dir_fd=parent)
            except PermissionError:  # O_NOATIME needs the file's owner; read without it
                pass
        return os.open(path.name if parent is not None else path, flags, dir_fd=parent)
    finally:
        if parent is not None:
            os.close(parent)


def _pread(fd: int, offset: int, length: int) -> bytes:
    parts: list[bytes] = []
    got = 0
    while got < length:
        piece = os.pread(fd, length - got, offset + got)
        if not piece:
            break
        parts.append(piece)
        got += len(piece)
    return b"".join(parts)


def look(path: Path, *, budget: int = DEFAULT_BUDGET) -> ContentLook:
    """Classify one file's content reading at most `budget` bytes; never raises for anything
    about the file (missing, a link, a fifo, unreadable, changing while read)."""
    name = path.name
    try:
        before = os.lstat(path)
    except (OSError, ValueError) as exc:
        return _unreadable(path, f"{name}: cannot stat ({_why(exc)})")
    if not stat.S_ISREG(before.st_mode):
        return _unreadable(path, f"{name}: {_type_of(before.st_mode)}, not read")
    try:
        fd = _open(path)
    except (OSError, ValueError) as exc:
        return _unreadable(path, f"{name}: cannot open ({_why(exc)})", before.st_size)
    try:
        now = os.fstat(fd)
        if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (before.st_dev,
                                                                          before.st_ino):
            return _unreadable(path, f"{name}: replaced while opened, not read", before.st_size)
        reads = plan(now.st_size, budget)
        chunks = [_pread(fd, offset, length) for offset, length in reads]
    except OSError as exc:
        return _unreadable(path, f"{name}: cannot read ({_why(exc)})", before.st_size)
    finally:
        os.close(fd)
    whole = len(reads) == 1 and reads[0] == (0, now.st_size)
    windows = _cut(chunks[0]) if whole else [c for c in chunks if len(c) >= MIN_WINDOW]
    return judge(path, now.st_size, chunks[0] if chunks else b"", windows,
                 sum(map(len, chunks)), whole=whole)


def _hex(data: bytes) -> str:
    shown = " ".join(f"{b:02x}" for b in data[:8])
    return f"{shown} ..." if len(data) > 8 else shown or "nothing"


def _magic(fmt: Format, head: bytes, size: int) -> bool | None:
    """True: a signature is present; False: none is; None: too little was read to say."""
    if any(s.found(head) for s in fmt.signatures):
        return True
    if len(head) >= size or all(len(head) >= s.needs for s in fmt.signatures):
        return False
    return None


def _values(values: list[float]) -> str:
    shown = ", ".join(f"{v:.0f}" for v in values[:6])
    return shown + (", ..." if len(values) > 6 else "")


def _control_share(data: bytes) -> float:
    controls = sum(data.count(b) for b in (*range(1, 9), 11, *range(14, 27), 28, 29, 30, 31,
                                             127))
    return controls / len(data)


def judge(path: Path, size: int, head: bytes, windows: list[bytes], bytes_read: int, *,
          whole: bool) -> ContentLook:
    """The verdict on what was read: `head` from offset 0, `windows` for the randomness test."""
    name = path.name
    known = format_for(name)
    ext, fmt = known if known else (None, None)
    reasons: list[str] = []
    if ext is not None and ext != name.lower().rsplit(".", 1)[-1]:
        reasons.append(f"{name}: judged as .{ext}")
    stats = [chi_square(w) for w in windows]
    random_stats = [v for v in stats if v < CHI_SQUARE_THRESHOLD]
    base = ContentLook(path=str(path), readable=True, kind="unknown", reasons=(), size=size,
                       bytes_read=bytes_read, extension=ext, format=fmt.name if fmt else None,
                       random_expected=fmt.random_expected if fmt else False,
                       windows=len(windows), random_windows=len(random_stats),
                       chi_square=tuple(round(v, 1) for v in stats))
    if size == 0:
        return replace(base, kind="ok", reasons=(f"{name}: empty",))
    if bytes_read == 0:
        return replace(base, reasons=(f"{name}: nothing read (budget 0)",))

    mismatch = False
    present: bool | None = True
    if fmt is not None and fmt.signatures:
        present = _magic(fmt, head, size)
        if present is False:
            mismatch = True
            reasons.append(f"{name}: not a {fmt.name} (starts {_hex(head)})")
        elif present is None:
            reasons.append(f"{name}: {fmt.name} signature not checked (only {len(head)} "
                           "bytes read)")
        else:
            reasons.append(f"{name}: {fmt.name} signature present")

    if stats:
        shown = random_stats or sorted(stats)[:1]
        label = "chi-square" if random_stats else "lowest chi-square"
        reasons.append(f"{name}: {len(random_stats)} of {len(stats)} windows random ({label} "
                       f"{_values(shown)}; threshold {CHI_SQUARE_THRESHOLD:.0f})")
    small_text_binary = False
    if fmt is not None and fmt.text and not stats and len(head) >= SMALL_TEXT_MIN \
            and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        share = _control_share(head)
        if share > CONTROL_SHARE:
            small_text_binary = True
            reasons.append(f"{name}: {share:.0%} control bytes in {len(head)} bytes, "
                           "not text")

    if mismatch or small_text_binary:
        kind: Kind = "encrypted"
    elif random_stats and fmt is not None and not fmt.random_expected:
        kind = "encrypted"
        reasons.append(f"random content is not expected in {fmt.name} (.{ext})")
    elif random_stats and fmt is None:
        kind = "unknown"
        reasons.append(f"{name}: format unknown, random content may be legitimate")
    elif present is None:
        kind = "unknown"
    elif not stats and not whole and not (fmt and fmt.signatures):
        kind = "unknown"
        reasons.append(f"{name}: read too little for a randomness test")
    else:
        kind = "ok"
        if random_stats and fmt is not None:
            reasons.append(f"random content is expected in {fmt.name} (.{ext})")
        elif not stats and not (fmt and fmt.signatures):
            reasons.append(f"{name}: {size} bytes, too small for a randomness test")
    return replace(base, kind=kind, reasons=tuple(reasons), magic_mismatch=mismatch)
