"""Replaying a plain SQL dump with psql without letting the dump run psql meta-commands.

A plain SQL dump is a psql script, and psql obeys backslash meta-commands in it: `\\! cmd` runs
a shell command as drbackup's user (which can read every agency's repository password), `\\o`
and `\\w` write files, `\\i` reads them. Dumps dropped into a dump folder come from the agency,
so they are untrusted input. psql releases with the CVE-2025-8714 fix (13.22, 14.19, 15.14,
16.10, 17.6 and later) have `\\restrict KEY`: after it psql refuses every meta-command except
`\\unrestrict KEY`. The replay sends `\\restrict <random key>` first; the dump cannot know the
key, so nothing in it can lift the restriction.

pg_dump of those releases writes its own `\\restrict`/`\\unrestrict` pair around a dump; psql
refuses a second `\\restrict`, so those lines are dropped from the stream when they stand
outside a COPY block (inside one, a line like `\\restrict...` is table data: `\\r` is COPY's
carriage-return escape). Misjudging a line here cannot weaken the restriction, only make a
replay fail.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import IO

import drbackup.children as children
from drbackup.sources.base import DumpError
from drbackup.sources.dumps import feed_tool

# First release of each major version whose psql knows \restrict.
RESTRICT_SINCE = {13: 22, 14: 19, 15: 14, 16: 10, 17: 6}
_VERSION = re.compile(r"\(PostgreSQL\) (\d+)(?:\.(\d+))?")
_DUMP_RESTRICT = re.compile(rb"\\(?:un)?restrict [A-Za-z0-9]+")
_COPY_FROM_STDIN = re.compile(rb"COPY .* FROM stdin;")
_END_OF_COPY = b"\\."


def psql_version(psql: str) -> tuple[int, int] | None:
    done = children.probe([psql, "--version"], env=children.minimal_env())
    if done is None:
        return None
    match = _VERSION.search(done.stdout)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2) or 0)


def can_restrict(version: tuple[int, int] | None) -> bool:
    if version is None:
        return False
    major, minor = version
    return major > max(RESTRICT_SINCE) or minor >= RESTRICT_SINCE.get(major, 10**6)


class RestrictedStream:
    """A write-only byte sink: `\\restrict KEY` first, then the dump line by line, without the
    dump's own `\\restrict`/`\\unrestrict` lines outside COPY blocks."""

    def __init__(self, sink: IO[bytes], key: str):
        self._sink = sink
        self._pending = b""
        self._in_copy = False
        sink.write(b"\\restrict " + key.encode("ascii") + b"\n")

    def write(self, data: bytes) -> int:
        lines = (self._pending + bytes(data)).split(b"\n")
        self._pending = lines.pop()
        for line in lines:
            self._line(line)
        return len(data)

    def flush(self) -> None:
        self._sink.flush()

    def finish(self) -> None:
        """The last line, when the dump does not end with a newline."""
        if self._pending:
            self._line(self._pending, newline=False)
            self._pending = b""
        self._sink.flush()

    def _line(self, line: bytes, *, newline: bool = True) -> None:
        bare = line.rstrip(b"\r")
        if self._in_copy:
            self._in_copy = bare != _END_OF_COPY
        elif _DUMP_RESTRICT.fullmatch(bare):
            return
        elif _COPY_FROM_STDIN.fullmatch(bare):
            self._in_copy = True
        self._sink.write(line + b"\n" if newline else line)


def replay_sql(psql: str, args: Sequence[str], env: Mapping[str, str],
               feed: Callable[[IO[bytes]], None], *, what: str) -> None:
    """Run `psql -X -w -q ARGS -f -` on the dump that `feed` writes, meta-commands refused.

    Raises DumpError when this psql cannot refuse them (too old) or the replay fails."""
    version = psql_version(psql)
    if not can_restrict(version):
        shown = "unknown version" if version is None else f"{version[0]}.{version[1]}"
        raise DumpError(
            f"{psql} ({shown}) cannot refuse the meta-commands (\\! and others) a plain SQL "
            "dump may carry, so the dump is not replayed",
            "install a PostgreSQL client of 13.22, 14.19, 15.14, 16.10, 17.6 or newer")
    key = secrets.token_hex(16)

    def restricted(sink: IO[bytes]) -> None:
        stream = RestrictedStream(sink, key)
        feed(stream)  # type: ignore[arg-type]  # write/flush is all a feed uses
        stream.finish()

    feed_tool([psql, "-X", "-w", "-q", *args, "-f", "-"], env, restricted, what=what)
