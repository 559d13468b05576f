"""Partial MariaDB/MySQL restores (`restore-db --table`): only the named tables' sections of a
mariadb-dump/mysqldump dump reach the client.

The dump is cut by the comment headers mysqldump writes before each part:

    --
    -- Table structure for table `licences`      DROP TABLE IF EXISTS / CREATE TABLE
    --
    -- Dumping data for table `licences`         LOCK TABLES, INSERT INTO, the table's triggers
    --
    -- Temporary table structure for view `v`    (views, events and routines: left out)
    -- Dumping events for database 'licences'
    -- Dumping routines for database 'licences'
    -- Final view structure for view `v`

The head of the dump before the first header (the session settings: character set, time zone,
FOREIGN_KEY_CHECKS=0) is kept while it holds only comments and SET lines; so is everything from
a named table's headers to the next header. A dump without headers (made with --skip-comments
or --compact) thus passes nothing but its settings, and the restore fails naming the tables it
did not find, instead of replaying the whole dump over the target.
A header is a whole line of its own; only the first MAX_HEADER bytes of a line are held to tell,
the rest of a long line (an extended INSERT) streams through: memory stays bounded. The kept
sections are replayed by the same hardened client as a whole dump (drbackup/sources/
mysqlreplay.py), so a crafted dump gains nothing by faking a header; it can only make its own
restore fail, and a named table the dump turns out not to have fails the restore."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import IO

from drbackup.sources.base import DumpError

MAX_HEADER = 1024
_TABLE_HEADER = re.compile(
    rb"-- (?:Table structure|Dumping data) for table `((?:[^`\n]|``){1,256})`\r?\n?")
# What the head of a dump holds before its first section: comments, blank lines and session
# settings (plain or in versioned comments), nothing that changes data. Any other line there
# (a dump made without its headers, --skip-comments or --compact) ends the head: what follows
# is left out rather than replayed whole over the target.
_HEAD_LINE = re.compile(
    rb"(?:--[^\n]*|\s*|/\*!\d{5} SET [^\n]*\*/ ?;|/\*M!\d{6}\\- enable the sandbox mode \*/ ?"
    rb"|SET [^\n]*;)\r?\n?")
_OTHER_HEADER = re.compile(
    rb"-- (?:Temporary table structure for view|Final view structure for view|Dumping events "
    rb"for database|Dumping routines for database|Dumping data for table|Table structure for "
    rb"table) ")


class TableSections:
    """A write-only byte sink passing on the dump's head and the named tables' sections."""

    def __init__(self, sink: IO[bytes], tables: Iterable[str]) -> None:
        self._sink = sink
        self._tables = frozenset(tables)
        self._keep = True  # the head of the dump
        self._in_head = True  # no section header seen yet
        self._head = b""  # the start of the current line, until it is told
        self._passing = False  # inside a long line already told
        self.seen: set[str] = set()

    def write(self, data: bytes) -> int:
        view = bytes(data)
        pos, end = 0, len(view)
        while pos < end:
            newline = view.find(b"\n", pos)
            stop = end if newline < 0 else newline + 1
            if self._passing:
                if self._keep:
                    self._sink.write(view[pos:stop])
                self._passing = newline < 0
            elif newline < 0:
                self._head += view[pos:stop]
                if len(self._head) > MAX_HEADER:  # too long to be a header
                    if self._in_head:
                        self._keep = False  # nor a session setting of the dump's head
                    self._emit(self._head)
                    self._head, self._passing = b"", True
            else:
                line, self._head = self._head + view[pos:stop], b""
                self._line(line)
            pos = stop
        return len(data)

    def flush(self) -> None:
        self._sink.flush()

    def finish(self) -> None:
        if self._head:
            self._line(self._head)
            self._head = b""

    def _emit(self, data: bytes) -> None:
        if self._keep:
            self._sink.write(data)

    def _line(self, line: bytes) -> None:
        if self._in_head and self._keep and not _HEAD_LINE.fullmatch(line):
            self._keep = False  # not a session setting: a dump without section headers
        if line.startswith(b"-- "):
            table = _TABLE_HEADER.fullmatch(line)
            if table is not None:
                self._in_head = False
                name = table.group(1).replace(b"``", b"`").decode("utf-8", "replace")
                self._keep = name in self._tables
                if self._keep:
                    self.seen.add(name)
            elif _OTHER_HEADER.match(line):
                self._in_head = False
                self._keep = False
        self._emit(line)


class OnlyTables:
    """A feed of a dump cut down to the named tables (call it like the feed it wraps); after
    the replay, `check` fails the restore for a named table the dump did not hold (the
    client is not stopped half-way for it: the other named tables are whole)."""

    def __init__(self, feed: Callable[[IO[bytes]], None], tables: Iterable[str]) -> None:
        self._feed = feed
        self.tables = sorted(set(tables))
        self.seen: set[str] = set()

    def __call__(self, sink: IO[bytes]) -> None:
        sections = TableSections(sink, self.tables)
        self._feed(sections)  # type: ignore[arg-type]  # write/flush is all a feed uses
        sections.finish()
        self.seen |= sections.seen

    def check(self) -> None:
        """Raises DumpError naming the tables the dump did not have."""
        missing = [name for name in self.tables if name not in self.seen]
        if missing:
            restored = (f"; the other table(s) named were restored: "
                        f"{', '.join(sorted(self.seen))}" if self.seen else "")
            raise DumpError(
                f"the dump has no table {', '.join(repr(m) for m in missing)} (no "
                "'Table structure for table' section names it)",
                "check the name (case matters); views, routines and events are not restored "
                f"by --table{restored}")
