"""The guard's per-source listing (#16) on real files: what is saved loads back the same for
any path (tabs, newlines, backslashes, carriage returns, bytes that are not UTF-8), a damaged
file is a ListingError (the guard then compares with nothing) and never anything else, a
missing one is None, and a save that fails leaves the previous listing whole."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest
from hypothesis import strategies as st

from drbackup.guard import listing
from drbackup.guard.listing import (
    ENCRYPTED,
    LOOK_CODES,
    NOT_LOOKED,
    OK,
    PLAIN,
    RANDOM,
    Entry,
    Listing,
    ListingError,
)
from tests.support.fuzz import fuzz_pair

AWKWARD = [
    "/srv/docs/plain.txt",
    "/srv/docs/tab\there.txt",
    "/srv/docs/new\nline.txt",
    "/srv/docs/carriage\rreturn.txt",
    "/srv/docs/back\\slash.txt",
    "/srv/docs/ends with backslash\\",
    "/srv/docs/\\t literally backslash-t",
    "/srv/docs/\\\\n double",
    "/srv/docs/" + b"caf\xe9-latin1.txt".decode("utf-8", "surrogateescape"),
    "/srv/docs/" + b"\xff\xfe\x80.bin".decode("utf-8", "surrogateescape"),
    "/srv/docs/会议纪要.md",
    "/srv/docs/ leading and trailing space ",
    "",
]


def _raw(path: Path, text: str) -> None:
    path.write_bytes(gzip.compress(text.encode("utf-8", "surrogateescape")))


def _header(files: int, fmt: int = listing.FORMAT) -> str:
    return json.dumps({"format": fmt, "snapshot": "abc", "files": files}) + "\n"


def test_awkward_paths_round_trip_with_sizes_looks_and_snapshot(tmp_path: Path) -> None:
    looks = sorted(LOOK_CODES)
    # lstat as listed: an mtime before 1970 is negative; inode 0 is an unsettled file.
    saved = Listing("0123abcd" * 8, {p: Entry(i * 1000 + 1, looks[i % len(looks)],
                                              -5 if i == 1 else 1_796_000_000 * 10**9 + i,
                                              1_796_000_000 * 10**9 + 7 * i, i)
                                     for i, p in enumerate(AWKWARD)})
    target = tmp_path / "guard" / "a" / "docs.listing.gz"
    listing.save(target, saved)
    loaded = listing.load(target)
    assert loaded == saved
    assert list(loaded.entries) == AWKWARD  # order kept too
    # One line per file: nothing in a path breaks the line structure.
    text = gzip.decompress(target.read_bytes()).decode("utf-8", "surrogateescape")
    assert text.count("\n") == len(AWKWARD) + 1
    assert json.loads(text.split("\n")[0]) == {"files": len(AWKWARD), "format": 2,
                                               "snapshot": "0123abcd" * 8}


def test_many_entries_round_trip_and_count_by_look(tmp_path: Path) -> None:
    codes = [NOT_LOOKED, OK, ENCRYPTED, RANDOM, PLAIN]
    saved = Listing(None, {f"/srv/d{i % 97}/f{i}.txt": Entry(i, codes[i % 5])
                           for i in range(20000)})
    target = tmp_path / "big.listing.gz"
    listing.save(target, saved)
    loaded = listing.load(target)
    assert loaded is not None and loaded.snapshot_id is None
    assert loaded.entries == saved.entries
    assert [loaded.count(c) for c in codes] == [4000] * 5


def test_an_empty_listing_round_trips(tmp_path: Path) -> None:
    target = tmp_path / "empty.listing.gz"
    listing.save(target, Listing("s1"))
    assert listing.load(target) == Listing("s1", {})


def test_a_missing_listing_is_none(tmp_path: Path) -> None:
    assert listing.load(tmp_path / "never-written.listing.gz") is None


def _truncated(path: Path) -> None:
    listing.save(path, Listing("s", {f"/f{i}": Entry(i) for i in range(500)}))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _body_corrupted(path: Path) -> None:
    # A bit flipped inside the deflate stream (a disk error): zlib rejects the block.
    listing.save(path, Listing("s", {f"/f{i}": Entry(i) for i in range(500)}))
    data = bytearray(path.read_bytes())
    for i in range(12, len(data) - 8):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _crc_wrong(path: Path) -> None:
    listing.save(path, Listing("s", {"/f": Entry(1)}))
    data = bytearray(path.read_bytes())
    data[-8] ^= 0x01
    path.write_bytes(bytes(data))


DAMAGED = {
    "truncated gzip": _truncated,
    "deflate stream corrupted": _body_corrupted,
    "gzip crc wrong": _crc_wrong,
    "not gzip": lambda p: p.write_bytes(b"0\to\t1\t2\t3\t/srv/plain text, not gzip\n"),
    "empty file": lambda p: p.write_bytes(b""),
    "gzip of nothing": lambda p: _raw(p, ""),
    "header not json": lambda p: _raw(p, "format 1\n1\to\t1\t2\t3\t/f\n"),
    "header not an object": lambda p: _raw(p, "[1, 2]\n"),
    "format 1 (no lstat)": lambda p: _raw(p, _header(1, fmt=1) + "1\to\t/f\n"),
    "another format": lambda p: _raw(p, _header(1, fmt=3) + "1\to\t1\t2\t3\t/f\n"),
    "mtime not a number": lambda p: _raw(p, _header(1) + "1\to\t+2\t2\t3\t/f\n"),
    "inode not a number": lambda p: _raw(p, _header(1) + "1\to\t1\t2\tx\t/f\n"),
    "header without format": lambda p: _raw(p, '{"files": 1}\n1\to\t1\t2\t3\t/f\n'),
    "bad escape": lambda p: _raw(p, _header(1) + "1\to\t1\t2\t3\t/srv/bad\\x.txt\n"),
    "escape cut at the end": lambda p: _raw(p, _header(1) + "1\to\t1\t2\t3\t/srv/ends\\\n"),
    "unknown look": lambda p: _raw(p, _header(1) + "1\tz\t1\t2\t3\t/f\n"),
    "size not a number": lambda p: _raw(p, _header(1) + "big\to\t1\t2\t3\t/f\n"),
    "line without tabs": lambda p: _raw(p, _header(1) + "/just/a/path\n"),
    "fewer files than the header": lambda p: _raw(p, _header(3) + "1\to\t1\t2\t3\t/a\n"
                                                  "2\to\t1\t2\t3\t/b\n"),
    "more files than the header": lambda p: _raw(p, _header(1) + "1\to\t1\t2\t3\t/a\n"
                                                 "2\to\t1\t2\t3\t/b\n"),
    "header without a count": lambda p: _raw(p, '{"format": 1}\n1\to\t1\t2\t3\t/a\n'),
    "a directory": lambda p: p.mkdir(),
}


@pytest.mark.parametrize("damage", DAMAGED.values(), ids=DAMAGED.keys())
def test_a_damaged_listing_is_a_listing_error(tmp_path: Path, damage: object) -> None:
    target = tmp_path / "src.listing.gz"
    assert callable(damage)
    damage(target)
    with pytest.raises(ListingError):
        listing.load(target)


def test_a_failed_rename_leaves_the_previous_listing_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "src.listing.gz"
    old = Listing("old", {"/srv/a.txt": Entry(10, OK), "/srv/b.txt": Entry(20, ENCRYPTED)})
    listing.save(target, old)
    before = target.read_bytes()

    def refuse(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space"):
        listing.save(target, Listing("new", {"/srv/c.txt": Entry(30)}))
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert listing.load(target) == old
    # The next save (the next backup) goes through over the leftover temporary file.
    listing.save(target, Listing("new", {"/srv/c.txt": Entry(30)}))
    assert listing.load(target) == Listing("new", {"/srv/c.txt": Entry(30)})


def test_a_write_failing_midway_leaves_the_previous_listing_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "src.listing.gz"
    old = Listing("old", {"/srv/a.txt": Entry(10, PLAIN)})
    listing.save(target, old)

    def full(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError):
        listing.save(target, Listing("new", {f"/srv/{i}": Entry(i) for i in range(100)}))
    monkeypatch.undo()
    assert listing.load(target) == old


def test_escape_keeps_every_line_break_out_of_the_line() -> None:
    for path in AWKWARD:
        escaped = listing.escape(path)
        assert "\n" not in escaped and "\r" not in escaped and "\t" not in escaped
        assert listing.unescape(escaped) == path


# Paths as a file system gives them: any characters but NUL, and bytes that are not UTF-8
# (os.fsdecode gives surrogate escapes for them).
_path_text = st.lists(st.characters(exclude_categories=["Cs"], exclude_characters="\0")
                      | st.sampled_from(["\t", "\n", "\r", "\\", "\\t", "\\n", "/"]),
                      max_size=16).map("".join)
_path_bytes = st.binary(max_size=20).filter(lambda b: b"\0" not in b).map(os.fsdecode)
_paths = st.lists(st.one_of(_path_text, _path_bytes), max_size=20, unique=True)
_entries = st.lists(st.tuples(st.integers(0, 2**62), st.sampled_from(sorted(LOOK_CODES))),
                    min_size=20, max_size=20)


def _round_trip(paths: list[str], values: list[tuple[int, str]]) -> None:
    import tempfile

    saved = Listing("snap", {p: Entry(size, look) for p, (size, look) in zip(
        paths, values, strict=False)})
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "fuzz.listing.gz"
        listing.save(target, saved)
        assert listing.load(target) == saved


test_any_paths_round_trip, test_any_paths_round_trip_long = fuzz_pair(
    _round_trip, _paths, _entries, examples=60)
