"""A drop folder's dump format is told from its content: pg_dump custom, tar, directory (and
drbackup's tar of one), plain SQL, gzip of any; anything else is "unsupported format", and a
damaged gzip is damage. Unpacking stays inside its bounds."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from drbackup.sources.base import DumpError
from drbackup.sources.dumpformat import (
    DIRECTORY_MARKER,
    DumpFormat,
    UnsupportedFormatError,
    detect,
    gunzip,
    prepare,
    unpack_directory,
)

HEADER = b"PGDMP\x01\x0e\x00\x04\x08"
PLAIN = (b"--\n-- PostgreSQL database dump\n--\n\n\\restrict abc\n\n"
         b"SET statement_timeout = 0;\nCREATE TABLE t (id integer);\n")


def _tar(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


PG_TAR = _tar([("toc.dat", HEADER + b"\x03" + b"\0" * 40), ("3001.dat", b"1\tx\n\\.\n"),
               ("restore.sql", b"--\n")])
DIR_TAR = _tar([(DIRECTORY_MARKER, b"note\n"), ("toc.dat", HEADER + b"\x03" + b"\0" * 40),
                ("3001.dat.gz", gzip.compress(b"1\tx\n", mtime=0))])


@pytest.mark.parametrize(("data", "expected"), [
    (HEADER + b"\x01" + b"\0" * 100, DumpFormat("custom")),
    (PG_TAR, DumpFormat("tar")),
    (DIR_TAR, DumpFormat("directory")),
    (PLAIN, DumpFormat("sql")),
    (b"\xef\xbb\xbf/* made by hand */\nBEGIN;\nINSERT INTO t VALUES (1);\n", DumpFormat("sql")),
    (gzip.compress(PLAIN, mtime=0), DumpFormat("sql", gzip=True)),
    (gzip.compress(PG_TAR, mtime=0), DumpFormat("tar", gzip=True)),
    (gzip.compress(HEADER + b"\x01", mtime=0), DumpFormat("custom", gzip=True)),
])
def test_formats_are_told_from_content(tmp_path: Path, data: bytes,
                                       expected: DumpFormat) -> None:
    path = tmp_path / "dump.whatever"
    path.write_bytes(data)
    assert detect(path) == expected


@pytest.mark.parametrize(("data", "said"), [
    (b"PK\x03\x04" + os.urandom(200), "starts with 504b0304"),
    (b"hello, this is a letter, not SQL\n", "not a pg_dump"),
    (b"-- MariaDB dump 10.19\n--\nCREATE TABLE t (id int);\n", "a MariaDB/MySQL dump"),
    (_tar([("README", b"x")]), "not a pg_dump"),
    (gzip.compress(gzip.compress(PLAIN, mtime=0), mtime=0), "(gzip) is not a pg_dump"),
    (b"CREATE TABLE t (id integer);\0\0binary", "not a pg_dump"),
    (b"", "starts with nothing"),
])
def test_anything_else_is_an_unsupported_format_in_one_line(tmp_path: Path, data: bytes,
                                                            said: str) -> None:
    path = tmp_path / "dump.sql.gz"
    path.write_bytes(data)
    with pytest.raises(UnsupportedFormatError) as caught:
        detect(path, "dump.sql.gz")
    assert caught.value.message.startswith("unsupported format: dump.sql.gz")
    assert said in caught.value.message and "\n" not in caught.value.message


def test_a_directory_needs_its_toc_and_links_are_not_followed(tmp_path: Path) -> None:
    folder = tmp_path / "dump.dir"
    folder.mkdir()
    with pytest.raises(UnsupportedFormatError, match=r"without toc\.dat"):
        detect(folder)
    (folder / "toc.dat").write_bytes(HEADER)
    assert detect(folder) == DumpFormat("directory")
    link = tmp_path / "link"
    link.symlink_to(folder / "toc.dat")
    with pytest.raises(DumpError, match="cannot be read"):
        detect(link)


def test_damaged_gzip_is_damage_not_an_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "dump.sql.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00" + b"\xff" * 200)
    with pytest.raises(DumpError) as caught:
        prepare(path, tmp_path)
    assert not isinstance(caught.value, UnsupportedFormatError)
    truncated = tmp_path / "cut.sql.gz"
    truncated.write_bytes(gzip.compress(PLAIN * 50, mtime=0)[:-20])
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(DumpError, match="does not decompress"):
        prepare(truncated, work)


def test_gunzip_stops_at_its_limit(tmp_path: Path) -> None:
    path = tmp_path / "zeros.sql.gz"
    path.write_bytes(gzip.compress(b"\0" * (4 << 20), mtime=0))
    with pytest.raises(DumpError, match="too little room"):
        gunzip(path, tmp_path / "out", limit=1 << 20)


def test_prepare_unpacks_a_directory_dump_and_gunzips(tmp_path: Path) -> None:
    archive = tmp_path / "dump"
    archive.write_bytes(gzip.compress(DIR_TAR, mtime=0))
    work = tmp_path / "work"
    work.mkdir()
    prepared = prepare(archive, work)
    assert prepared.format == DumpFormat("directory", gzip=True)
    assert sorted(p.name for p in prepared.path.iterdir()) == ["3001.dat.gz", "toc.dat"]


@pytest.mark.parametrize("member", ["../escape", "sub/toc.dat", "/etc/passwd", ".hidden"])
def test_unpacking_refuses_anything_but_flat_plain_files(tmp_path: Path, member: str) -> None:
    archive = tmp_path / "dump.tar"
    archive.write_bytes(_tar([(DIRECTORY_MARKER, b""), ("toc.dat", HEADER), (member, b"x")]))
    with pytest.raises(DumpError, match="not a plain file"):
        unpack_directory(archive, tmp_path / "out", limit=1 << 20)
    assert not (tmp_path / "escape").exists()


def test_unpacking_refuses_a_symlink_member(tmp_path: Path) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("toc.dat")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/shadow"
        tar.addfile(info)
    archive = tmp_path / "dump.tar"
    archive.write_bytes(out.getvalue())
    with pytest.raises(DumpError, match="not a plain file"):
        unpack_directory(archive, tmp_path / "out", limit=1 << 20)
