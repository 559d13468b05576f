"""What a drop folder's dump is, told from its content (never from its name), and getting it
into the shape its restore tool reads.

A drop folder's files are the agency's: a name says nothing (`*.sql.gz` may hold anything), so
the first bytes decide (at most HEAD_BYTES of them, also after gunzip):

- custom: `pg_dump -Fc`, the `PGDMP` magic;
- tar: `pg_dump -Ft`, a ustar header whose first member is `toc.dat` holding `PGDMP`;
- directory: `pg_dump -Fd`, a directory holding `toc.dat`; a drop folder's directory dump is
  backed up as a tar drbackup writes (first member DIRECTORY_MARKER, see pgdirdump.py);
- plain: SQL text (no NUL byte, UTF-8, the first statement a SQL word or a psql line);
- gzip of any of these (one layer).
Anything else is an "unsupported format", which says nothing about damage: a damaged dump of
a known format is found by its restore tool (or by gunzip) and reported as damaged.

pg_restore reads custom and tar archives from a file and a directory dump from a directory,
psql a plain dump from its stdin: `prepare` gunzips into the drill's scratch directory and
unpacks a directory dump there, bounded by the scratch filesystem's free space.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from drbackup.sources.base import DumpError

CUSTOM = "custom"
TAR = "tar"
DIRECTORY = "directory"
PLAIN = "sql"  # plain SQL (the name drbackup's tags and reports use: format=sql)
# pg_restore --format= of each archive kind (plain SQL goes to psql instead).
PG_RESTORE_FORMAT = {CUSTOM: "custom", TAR: "tar", DIRECTORY: "directory"}
HEAD_BYTES = 64 * 1024
# The first member of the tar drbackup streams for a drop folder's directory dump.
DIRECTORY_MARKER = ".drbackup-pg-directory"
MAX_MEMBERS = 100_000
CHUNK = 1 << 20
_TOC = "toc.dat"
_MAGIC = b"PGDMP"
_GZIP = b"\x1f\x8b"
_USTAR = (b"ustar\x0000", b"ustar  \x00")
# The first word of a plain SQL dump's first statement (pg_dump writes SET; a hand-made
# script may start anywhere), or a psql backslash line (\restrict, \connect).
_SQL_START = re.compile(
    rb"(?:\\[a-z]|(?:SET|CREATE|ALTER|INSERT|COPY|BEGIN|START|SELECT|DROP|COMMENT|GRANT|"
    rb"REVOKE|DO|WITH|UPDATE|DELETE|TRUNCATE|LOCK|VALUES|SHOW|RESET|COMMIT)\b)",
    re.IGNORECASE)
_MYSQL_HEADER = re.compile(rb"-- (?:MariaDB|MySQL) dump")
_MEMBER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


class UnsupportedFormatError(DumpError):
    """The content is no dump format drbackup restores: not damage, a wrong kind of file."""


@dataclass(frozen=True)
class DumpFormat:
    archive: str  # CUSTOM, TAR, DIRECTORY or PLAIN
    gzip: bool = False

    @property
    def name(self) -> str:
        return self.archive + ("+gzip" if self.gzip else "")


def _tar_member_name(block: bytes) -> str:
    return block[:100].split(b"\0", 1)[0].decode("utf-8", errors="replace")


def _plain_sql(head: bytes) -> bool:
    if b"\0" in head or _MYSQL_HEADER.search(head[:512]):
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not merely a character cut at the end of HEAD_BYTES
            return False
    text = head.lstrip(b"\xef\xbb\xbf")
    while True:  # skip blank lines and comments to the first statement
        text = text.lstrip()
        if text.startswith(b"--"):
            _, _, text = text.partition(b"\n")
        elif text.startswith(b"/*"):
            end = text.find(b"*/")
            if end < 0:
                return False
            text = text[end + 2:]
        else:
            break
    return _SQL_START.match(text) is not None


def sniff(head: bytes) -> str | None:
    """The archive kind these first bytes begin (uncompressed), or None."""
    if head.startswith(_MAGIC):
        return CUSTOM
    if len(head) >= 512 and head[257:265] in _USTAR:
        first = _tar_member_name(head)
        if first == _TOC and head[512:517] == _MAGIC:
            return TAR
        if first == DIRECTORY_MARKER:
            return DIRECTORY
        return None
    if _plain_sql(head):
        return PLAIN
    return None


def _gunzip_head(head: bytes) -> bytes:
    """Up to HEAD_BYTES of what the gzip data in `head` decompresses to (may be less).
    Raises DumpError when it does not decompress at all (damaged)."""
    inflate = zlib.decompressobj(wbits=31)
    try:
        return inflate.decompress(head, HEAD_BYTES)
    except zlib.error as exc:
        raise DumpError(f"the gzip data does not decompress: {exc}",
                        "a truncated or damaged dump") from None


def _unsupported(what: str, head: bytes) -> UnsupportedFormatError:
    if _MYSQL_HEADER.search(head[:512]):
        why = "a MariaDB/MySQL dump; drop-folder drills restore PostgreSQL dumps"
    else:
        why = f"starts with {head[:8].hex() or 'nothing'}"
    return UnsupportedFormatError(
        f"unsupported format: {what} is not a pg_dump custom, tar, directory or plain SQL "
        f"dump, nor gzip of one ({why})",
        "drop PostgreSQL dumps made by pg_dump (-Fc, -Ft, -Fd, plain), optionally gzipped")


def _read_head(path: Path, what: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            return handle.read(HEAD_BYTES)
    except OSError as exc:
        raise DumpError(f"{what} cannot be read: {exc.strerror}",
                        "links are never followed; check the file") from None


def detect(path: Path, what: str = "the dump") -> DumpFormat:
    """The dump format of the file or directory at `path` (links not followed).

    Raises UnsupportedFormatError, DumpError (unreadable, or gzip data that does not
    decompress)."""
    if path.is_dir() and not path.is_symlink():
        if (path / _TOC).is_file() and not (path / _TOC).is_symlink():
            return DumpFormat(DIRECTORY)
        raise UnsupportedFormatError(f"unsupported format: {what} is a directory without "
                                     f"{_TOC}", "a pg_dump -Fd dump holds toc.dat")
    head = _read_head(path, what)
    if head.startswith(_GZIP):
        inner = _gunzip_head(head)
        kind = sniff(inner) if inner else None
        if kind is None:
            raise _unsupported(f"{what} (gzip)", inner)
        return DumpFormat(kind, gzip=True)
    kind = sniff(head)
    if kind is None:
        raise _unsupported(what, head)
    return DumpFormat(kind)


# -- into the restore tool's shape -------------------------------------------------------------


def scratch_limit(directory: Path) -> int:
    """Bytes that may still be written under `directory`: its filesystem's free space less a
    reserve (5%, at least 256 MiB), so a drill never fills the state directory's disk."""
    usage = shutil.disk_usage(directory)
    return max(0, usage.free - max(usage.total // 20, 256 << 20))


def _too_large(limit: int) -> DumpError:
    return DumpError(f"the unpacked dump would leave the scratch filesystem too little room "
                     f"(more than {limit} bytes)",
                     "free space under the state directory, or drill this dump elsewhere")


def _create(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                   0o600)


def gunzip(source: Path, target: Path, limit: int) -> None:
    """Decompress gzip `source` (all members) into a new file `target`, at most `limit` bytes.

    Raises DumpError for damaged or truncated gzip data or output above the limit."""
    written = 0
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        with os.fdopen(fd, "rb") as raw, gzip.GzipFile(fileobj=raw) as unzipped, \
                os.fdopen(_create(target), "wb") as out:
            for block in iter(lambda: unzipped.read(CHUNK), b""):
                written += len(block)
                if written > limit:
                    raise _too_large(limit)
                out.write(block)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DumpError(f"the gzip data does not decompress: {exc}",
                        "a truncated or damaged dump") from None


def unpack_directory(archive: Path, target: Path, limit: int) -> None:
    """Unpack the tar drbackup made of a directory dump into the new directory `target`: flat
    regular files with plain names only (no links, paths or devices), at most MAX_MEMBERS and
    `limit` bytes. Raises DumpError when the tar is damaged or holds anything else."""
    target.mkdir(mode=0o700)
    total = 0
    try:
        with tarfile.open(archive, "r:") as tar:
            for index, member in enumerate(tar):
                if index >= MAX_MEMBERS:
                    raise DumpError(f"the directory dump has more than {MAX_MEMBERS} files",
                                    "a pg_dump -Fd dump has one file per table")
                if index == 0 and member.name == DIRECTORY_MARKER:
                    continue
                if not member.isreg() or not _MEMBER_NAME.fullmatch(member.name):
                    raise DumpError(f"the directory dump holds {member.name[:80]!r}, which is "
                                    "not a plain file of a pg_dump directory",
                                    "the snapshot was not written by drbackup: check who "
                                    "wrote it")
                total += member.size
                if total > limit:
                    raise _too_large(limit)
                data = tar.extractfile(member)
                assert data is not None  # a regular member
                with os.fdopen(_create(target / member.name), "wb") as out:
                    shutil.copyfileobj(data, out, CHUNK)
    except tarfile.TarError as exc:
        raise DumpError(f"the directory dump's tar does not read: {exc}",
                        "a truncated or damaged dump") from None
    if not (target / _TOC).is_file():
        raise DumpError(f"the directory dump holds no {_TOC}", "a truncated or damaged dump")


@dataclass(frozen=True)
class PreparedDump:
    format: DumpFormat
    path: Path  # what the restore tool reads: a file, or a directory for DIRECTORY


def prepare(dump: Path, workdir: Path, what: str = "the dump") -> PreparedDump:
    """Detect the dump's format and bring it into the shape its tool reads, in `workdir`.

    Raises UnsupportedFormatError, DumpError (damaged gzip or tar, no room)."""
    found = detect(dump, what)
    path = dump
    if found.gzip:
        path = workdir / "gunzipped"
        gunzip(dump, path, scratch_limit(workdir))
    if found.archive == DIRECTORY and not path.is_dir():
        unpacked = workdir / "directory"
        unpack_directory(path, unpacked, scratch_limit(workdir))
        path = unpacked
    return PreparedDump(found, path)
