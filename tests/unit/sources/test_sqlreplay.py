"""The plain-SQL replay guard: `\\restrict` goes first, the dump's own restrict lines go (but not
table data that looks like them), and only psql releases that know `\\restrict` are used."""

from __future__ import annotations

import io

import pytest

from drbackup.sources.sqlreplay import RestrictedStream, can_restrict

DUMP = (b"\\restrict AbC123\n"
        b"SET client_encoding = 'UTF8';\n"
        b"COPY public.notes (body) FROM stdin;\n"
        b"\\restrict looks-like-a-command-but-is-data\n"
        b"\\unrestrict AbC123\n"
        b"\\.\n"
        b"SELECT 1;\n"
        b"\\unrestrict AbC123\n")


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_stream_restricts_first_and_keeps_copy_data(chunk: int) -> None:
    sink = io.BytesIO()
    stream = RestrictedStream(sink, "k3y")
    for start in range(0, len(DUMP), chunk):
        stream.write(DUMP[start:start + chunk])
    stream.finish()
    assert sink.getvalue().splitlines() == [
        b"\\restrict k3y",
        b"SET client_encoding = 'UTF8';",
        b"COPY public.notes (body) FROM stdin;",
        b"\\restrict looks-like-a-command-but-is-data",  # COPY data: \r is an escape there
        b"\\unrestrict AbC123",
        b"\\.",
        b"SELECT 1;",
    ]


def test_a_last_line_without_newline_is_kept() -> None:
    sink = io.BytesIO()
    stream = RestrictedStream(sink, "k")
    stream.write(b"SELECT 1;\n\\! touch /tmp/x")
    stream.finish()
    # Not filtered: psql refuses it under the restriction (the integration test shows that).
    assert sink.getvalue() == b"\\restrict k\nSELECT 1;\n\\! touch /tmp/x"


@pytest.mark.parametrize(("version", "expected"), [
    ((15, 14), True), ((15, 13), False), ((16, 10), True), ((17, 5), False), ((17, 6), True),
    ((18, 0), True), ((13, 22), True), ((12, 22), False), (None, False)])
def test_which_psql_can_restrict(version: tuple[int, int] | None, expected: bool) -> None:
    assert can_restrict(version) is expected
