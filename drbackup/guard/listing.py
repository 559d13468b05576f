"""The guard's memory of a source between backups: every file of the last assessed snapshot
with what `lstat` said of it (size, mtime, ctime, inode) and what its last content look said,
kept in the state directory.

The guard walks the source beside restic (drbackup/guard/walk.py) and compares that walk with
this listing: a file whose size, mtime, ctime or inode differs is modified (restic's own test),
one not listed is new, a listed one no longer there is gone; so churn (modified + gone), mass
deletions, renames (gone + new of the same size) and "this path was not random before" cost no
repository read and no per-file output of restic. An entry with inode 0 is "unsettled" (the
file changed while restic ran, so the walk cannot tell which version restic stored): it
compares as modified at the next backup.

File: gzip text (two members: the header, the lines), a JSON header line, then one line per
file:
`<size>\\t<look>\\t<mtime_ns>\\t<ctime_ns>\\t<inode>\\t<path>`, the path with backslash, tab,
newline and carriage return escaped. Written to a temporary file,
fsynced, renamed: a killed backup leaves the previous listing whole, so the next backup is
compared with the last assessed state and no change goes unseen.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

FORMAT = 2  # 1 (size and look only, read from restic's --verbose=2) is not read
# What the last content look of a path said (Look.code): not looked at, ok, encrypted, random
# in a format of unknown randomness, not random in such a format.
NOT_LOOKED, OK, ENCRYPTED, RANDOM, PLAIN = "", "o", "e", "u", "p"
LOOK_CODES = frozenset({NOT_LOOKED, OK, ENCRYPTED, RANDOM, PLAIN})

_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
_UNESCAPES = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}


@dataclass(slots=True)
class Entry:
    size: int
    look: str = NOT_LOOKED
    mtime: int = 0  # ns
    ctime: int = 0  # ns
    ino: int = 0  # 0: unsettled, compares as modified

    def same_file(self, size: int, mtime: int, ctime: int, ino: int) -> bool:
        """restic's test of an unchanged file: size, mtime, ctime and inode all as listed."""
        return self.ino == ino and self.size == size and self.mtime == mtime \
            and self.ctime == ctime and ino != 0


@dataclass
class Listing:
    snapshot_id: str | None
    entries: dict[str, Entry] = field(default_factory=dict)

    def count(self, look: str) -> int:
        return sum(1 for entry in self.entries.values() if entry.look == look)


class ListingError(Exception):
    """The listing file is damaged: the guard starts again as for a first backup."""


_ESCAPE_TABLE = str.maketrans(_ESCAPES)
_SPECIAL = re.compile(r"[\\\t\n\r]")


def escape(path: str) -> str:
    return path.translate(_ESCAPE_TABLE) if _SPECIAL.search(path) else path


def unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out: list[str] = []
    chars = iter(text)
    for char in chars:
        if char == "\\":
            nxt = next(chars, "")
            if nxt not in _UNESCAPES:
                raise ListingError(f"bad escape \\{nxt}")
            out.append(_UNESCAPES[nxt])
        else:
            out.append(char)
    return "".join(out)


def _header(listing: Listing) -> bytes:
    header = {"format": FORMAT, "snapshot": listing.snapshot_id, "files": len(listing.entries)}
    return (json.dumps(header, sort_keys=True) + "\n").encode()


def body(listing: Listing) -> bytes:
    """The entries' lines as one gzip member. A listing is its header's member followed by
    this one (RFC 1952 allows several; gzip.decompress reads them all), so the lines can be
    packed before the snapshot id is known: the guard does it beside restic."""
    text = "".join(f"{entry.size}\t{entry.look}\t{entry.mtime}\t{entry.ctime}\t{entry.ino}\t"
                   f"{escape(path)}\n" for path, entry in listing.entries.items())
    return gzip.compress(text.encode("utf-8", "surrogateescape"), compresslevel=1, mtime=0)


def save(path: Path, listing: Listing, *, packed: bytes | None = None) -> None:
    """Write atomically (temporary file, fsync, rename). `packed`: body(listing), made
    earlier from these very entries. Raises OSError."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    lines = body(listing) if packed is None else packed
    try:
        with open(tmp, "wb") as raw:
            raw.write(gzip.compress(_header(listing), compresslevel=1, mtime=0))
            raw.write(lines)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


def load(path: Path) -> Listing | None:
    """The saved listing, None when there is none. Raises ListingError when it is damaged
    (truncated, not gzip, bad lines, another format)."""
    try:
        data = gzip.decompress(path.read_bytes()).decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return None
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise ListingError(f"{path}: {exc}") from None
    lines = data.split("\n")
    try:
        header = json.loads(lines[0])
        if not isinstance(header, dict) or type(header.get("format")) is not int \
                or header.get("format") != FORMAT:
            raise ListingError(f"{path}: not a format-{FORMAT} guard listing")
        snapshot = header.get("snapshot")
        listing = Listing(snapshot if isinstance(snapshot, str) else None)
        for line in lines[1:]:
            if not line:
                continue
            size, look, mtime, ctime, ino, escaped = line.split("\t", 5)
            if look not in LOOK_CODES:
                raise ListingError(f"{path}: unknown look {look!r}")
            if not (size.isdigit() and mtime.removeprefix("-").isdigit() and ctime.isdigit()
                    and ino.isdigit()):
                raise ListingError(f"{path}: bad size, mtime, ctime or inode in "
                                   f"{line[:80]!r}")
            listing.entries[unescape(escaped)] = Entry(int(size), look, int(mtime),
                                                       int(ctime), int(ino))
    except (ValueError, TypeError) as exc:
        raise ListingError(f"{path}: {exc}") from None
    if len(listing.entries) != header.get("files"):
        raise ListingError(f"{path}: {len(listing.entries)} files, header says "
                           f"{header.get('files')}")
    return listing
