"""Replaying a MariaDB/MySQL SQL dump without handing the dump drbackup's privileges.

A dump is untrusted input (an agency's server or drop folder may be an attacker's), and the
mariadb client obeys more than SQL in it:

- `LOAD DATA LOCAL INFILE '/any/host/file'` makes the *client* read a file of this host and
  send it to the server, and `--sandbox` does not stop it. Every client drbackup starts gets
  `--local-infile=0`, and runs without the ambient/inheritable capabilities the daemon may hold
  (the unit's CAP_DAC_READ_SEARCH), in a minimal environment (no MYSQL_* variables, no HOME).
- option files: `--defaults-file=` drbackup's own private file comes first, so no ~/.my.cnf or
  /etc/mysql file adds options (e.g. `local-infile=1`, `init-command=`) behind drbackup's back.
- `DEFINER=` clauses (views, triggers, routines, events, also inside `/*!50013 ... */`
  versioned comments) would create objects that run as whoever the dump names, e.g. root. The
  stream is rewritten so every clause says `DEFINER=CURRENT_USER` (the user replaying it). The
  rewrite tracks quoted strings, identifiers and comments across lines, so data that merely
  contains the text is left alone; a clause it cannot parse fails the replay. It assumes
  backslash escapes in strings: a dump that switches to NO_BACKSLASH_ESCAPES can hide a clause
  inside what looks like a string, as can SQL built at run time (PREPARE/EXECUTE) or a
  multi-byte character set. So the rewrite is one of three layers: every replay starts in a
  session whose sql_mode has no flag that changes how strings are read (`QUOTING_RESET`), a
  drill replays as a user whose rights end at the scratch database (the server refuses any
  other definer), and after every replay `foreign_definers` lists the objects defined as
  anyone but the replaying user: they are dropped and the replay fails.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from typing import IO

from drbackup.children import without_capabilities
from drbackup.sources.base import DumpError
from drbackup.sources.dumps import feed_tool

REPLAY_DEFINER = b"CURRENT_USER"
# A line longer than the server's largest max_allowed_packet cannot be replayed anyway.
MAX_LINE = 1 << 30
# How much of a DEFINER clause split over lines is held back waiting for its end.
MAX_CLAUSE = 64 * 1024

_CODE = b""
_COMMENT = b"*"
_QUOTE_END = {
    quote: re.compile(rb"[^" + quote + rb"\\]*+(?:\\.[^" + quote + rb"\\]*+)*+" + quote,
                      re.DOTALL)
    for quote in (b"'", b'"')
}
_QUOTE_END[b"`"] = re.compile(rb"[^`]*+`")  # a doubled `` closes and reopens: same state
# A quote, a plain (not versioned /*! or /*M!) comment, a line comment, or the word DEFINER.
_CODE_TOKEN = re.compile(
    rb"['\"`]|/\*(?!!|M!)|#|--(?=[\x00-\x20]|$)|(?<![A-Za-z0-9_$])DEFINER(?![A-Za-z0-9_$])",
    re.IGNORECASE)
_NAME = (rb"(?:`[^`]*+(?:``[^`]*+)*+`|'[^'\\]*+(?:(?:\\.|'')[^'\\]*+)*+'"
         rb"|\"[^\"\\]*+(?:(?:\\.|\"\")[^\"\\]*+)*+\"|[A-Za-z0-9_$.%\-]+)")
_DEFINER_CLAUSE = re.compile(
    rb"DEFINER\s*=\s*(?:CURRENT_(?:USER|ROLE)(?:\s*\(\s*\))?(?![A-Za-z0-9_$])|"
    + _NAME + rb"(?:\s*@\s*" + _NAME + rb")?)", re.IGNORECASE | re.DOTALL)
_DEFINER_HEAD = re.compile(rb"DEFINER\s*(?:=|$)", re.IGNORECASE)

# sql_mode flags under which the server would read strings and quotes differently from the
# rewriter (the combination modes include ANSI_QUOTES).
_QUOTING_FLAGS = ("NO_BACKSLASH_ESCAPES", "ANSI_QUOTES", "ANSI", "DB2", "MAXDB", "MSSQL",
                  "ORACLE", "POSTGRESQL")


def _quoting_reset() -> bytes:
    expression = "CONCAT(',', @@SESSION.sql_mode, ',')"
    for flag in _QUOTING_FLAGS:
        expression = f"REPLACE({expression}, ',{flag},', ',')"
    return f"SET SESSION sql_mode = TRIM(BOTH ',' FROM {expression});\n".encode()


# The first statement of every replay: the server's own default sql_mode, whatever it is,
# without the flags that change quoting (as mysqldump's own session has when it dumps).
QUOTING_RESET = _quoting_reset()
_OBJECT_KINDS = (("VIEW", "VIEWS", "TABLE_NAME", "TABLE_SCHEMA"),
                 ("PROCEDURE", "ROUTINES", "ROUTINE_NAME", "ROUTINE_SCHEMA"),
                 ("TRIGGER", "TRIGGERS", "TRIGGER_NAME", "TRIGGER_SCHEMA"),
                 ("EVENT", "EVENTS", "EVENT_NAME", "EVENT_SCHEMA"))


def foreign_definers_sql(database_literal: str) -> str:
    """A query listing `KIND<TAB>name<TAB>definer` for every view, routine, trigger and event
    of the database not defined by the user running it (functions come out as FUNCTION)."""
    parts = []
    for kind, table, name, schema in _OBJECT_KINDS:
        shown = "ROUTINE_TYPE" if table == "ROUTINES" else f"'{kind}'"
        parts.append(f"SELECT {shown}, {name}, DEFINER FROM information_schema.{table} "  # noqa: S608 - our constants and a quoted literal
                     f"WHERE {schema} = {database_literal} AND DEFINER <> CURRENT_USER()")
    return " UNION ALL ".join(parts) + ";"


def client_env() -> dict[str, str]:
    """The whole environment of a mariadb client: no MYSQL_* variables, no HOME, no secrets."""
    return {"PATH": os.environ.get("PATH") or "/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C", "LC_ALL": "C", "TZ": "UTC"}


def client_argv(client: str, defaults_file: str, *args: str) -> list[str]:
    """A mariadb client reading only drbackup's defaults file (first: the client requires it
    there), local infile off, started without drbackup's capabilities."""
    return without_capabilities([client, f"--defaults-file={defaults_file}",
                                 "--local-infile=0", *args])


class DefinerRewriter:
    """A write-only byte sink passing a SQL dump on with every DEFINER clause outside strings
    and comments replaced by `DEFINER=CURRENT_USER`. Raises DumpError (from write/finish) for
    a clause it cannot parse or a line longer than MAX_LINE."""

    def __init__(self, sink: IO[bytes], definer: bytes = REPLAY_DEFINER) -> None:
        self._sink = sink
        self._definer = b"DEFINER=" + definer
        self._state = _CODE
        self._parts: list[bytes] = []
        self._size = 0
        self.rewritten = 0

    def write(self, data: bytes) -> int:
        chunk = bytes(data)
        cut = chunk.rfind(b"\n") + 1
        if cut == 0:
            self._parts.append(chunk)
            self._size += len(chunk)
            if self._size > MAX_LINE:
                raise DumpError("the dump has a line longer than 1 GiB",
                                "no MariaDB server accepts a statement that long")
            return len(data)
        text = b"".join([*self._parts, chunk[:cut]])
        out, carried = self._scan(text, final=False)
        self._sink.write(out)
        rest = carried + chunk[cut:]
        self._parts = [rest] if rest else []
        self._size = len(rest)
        return len(data)

    def flush(self) -> None:
        self._sink.flush()

    def finish(self) -> None:
        """The rest of the dump, when it does not end with a newline."""
        text = b"".join(self._parts)
        self._parts, self._size = [], 0
        if text:
            out, _ = self._scan(text, final=True)
            self._sink.write(out)
        self._sink.flush()

    def _scan(self, text: bytes, *, final: bool) -> tuple[bytes, bytes]:
        out: list[bytes] = []
        pos, end = 0, len(text)
        while pos < end:
            if self._state == _COMMENT:
                close = text.find(b"*/", pos)
                stop = end if close < 0 else close + 2
                out.append(text[pos:stop])
                pos = stop
                if close >= 0:
                    self._state = _CODE
                continue
            if self._state != _CODE:
                closed = _QUOTE_END[self._state].match(text, pos)
                stop = end if closed is None else closed.end()
                out.append(text[pos:stop])
                pos = stop
                if closed is not None:
                    self._state = _CODE
                continue
            token = _CODE_TOKEN.search(text, pos)
            if token is None:
                out.append(text[pos:])
                break
            start, word = token.start(), token.group()
            out.append(text[pos:start])
            if word in (b"'", b'"', b"`"):
                self._state = word
                out.append(word)
                pos = token.end()
            elif word == b"/*":
                self._state = _COMMENT
                out.append(word)
                pos = token.end()
            elif word in (b"#", b"--"):
                newline = text.find(b"\n", start)
                stop = end if newline < 0 else newline
                out.append(text[start:stop])
                pos = stop
            else:
                clause = _DEFINER_CLAUSE.match(text, start)
                if clause is not None and (clause.end() < end or final):
                    out.append(self._definer)
                    self.rewritten += 1
                    pos = clause.end()
                elif _DEFINER_HEAD.match(text, start) or not text[token.end():].strip():
                    # The clause may go on in the next line: hold it back until it does.
                    if final or end - start > MAX_CLAUSE:
                        raise DumpError(
                            "the dump has a DEFINER clause drbackup cannot parse: "
                            f"{text[start:start + 60]!r}",
                            "a DEFINER clause names `user`@`host`; the dump may be damaged "
                            "or crafted")
                    return b"".join(out), text[start:]
                else:
                    out.append(word)  # SQL SECURITY DEFINER, a column named definer
                    pos = token.end()
        return b"".join(out), b""


def replay_dump(client: str, defaults_file: str, database: str,
                feed: Callable[[IO[bytes]], None], *, extra_args: Sequence[str] = (),
                sandbox: Sequence[str] = (), what: str) -> int:
    """Replay the SQL dump `feed` writes into `database` with the hardened client, its
    DEFINER clauses rewritten; returns how many were. Raises DumpError when it fails."""
    rewritten: list[int] = []

    def rewriting(sink: IO[bytes]) -> None:
        sink.write(QUOTING_RESET)
        stream = DefinerRewriter(sink)
        feed(stream)  # type: ignore[arg-type]  # write/flush is all a feed uses
        stream.finish()
        rewritten.append(stream.rewritten)

    feed_tool(client_argv(client, defaults_file, "--binary-mode", *sandbox, *extra_args,
                          f"--database={database}"),
              client_env(), rewriting, what=what)
    return sum(rewritten)
