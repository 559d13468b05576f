"""What a PostgreSQL custom-format dump needs from the server it is restored onto, read before
the restore: the roles it names (owners, grantees, role settings) and the database's own
properties (encoding and locale, owner, settings, comment, grants), which pg_restore applies only
with --create and so never into a database drbackup created under its own name.

Read from `pg_restore --create --schema-only --file=-`: the SQL of the dump's table of contents,
which pg_restore prints after reading only the head of the dump (the data is never read, so the
second pass over a large dump costs a few kilobytes). The dump is the agency's: the statements
taken from it are recognised by their whole token shape, and the database name in them is
replaced by the restore target's."""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO

import drbackup.children as children
from drbackup.sources.base import DumpError
from drbackup.sources.dumps import STDERR_TAIL_LINES, last_line

# Role names that are keywords, not roles (unquoted in pg_dump's output).
_PSEUDO_ROLES = frozenset({"PUBLIC", "CURRENT_USER", "SESSION_USER", "CURRENT_ROLE"})
# CREATE DATABASE options carried over to the target; TABLESPACE and OID are the source
# server's own (the target may not have the tablespace).
_CREATE_OPTIONS = frozenset({"TEMPLATE", "ENCODING", "LOCALE_PROVIDER", "LOCALE", "LC_COLLATE",
                             "LC_CTYPE", "ICU_LOCALE", "ICU_RULES", "BUILTIN_LOCALE",
                             "COLLATION_VERSION"})
_TOKEN = re.compile(r"""
    (?P<quoted>"(?:[^"]|"")*")
  | (?P<string>(?<![A-Za-z0-9_$])[Ee]'(?:[^'\\]|\\.|'')*'|'(?:[^']|'')*')
  | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<other>\S)
""", re.VERBOSE)


@dataclass(frozen=True)
class Token:
    text: str
    kind: str  # quoted, string, word, number, other
    start: int
    end: int

    @property
    def keyword(self) -> str:
        """The upper-cased word ("" for anything else): keywords are unquoted words."""
        return self.text.upper() if self.kind == "word" else ""

    @property
    def name(self) -> str:
        """The identifier this token spells (quotes removed)."""
        if self.kind == "quoted":
            return self.text[1:-1].replace('""', '"')
        return self.text


def tokens(statement: str) -> list[Token]:
    return [Token(m.group(), m.lastgroup or "other", m.start(), m.end())
            for m in _TOKEN.finditer(statement)]


def split_statements(sql: str) -> list[str]:
    """The SQL statements of a psql script, without comments and psql meta-command lines
    (`\\connect`, `\\restrict`); quotes, quoted identifiers and dollar quotes are respected."""
    statements: list[str] = []
    current: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        char = sql[i]
        if char == "\\" and not "".join(current).strip():
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
            current = []
            continue
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
            current.append(" ")
            continue
        if sql.startswith("/*", i):  # a block comment (PostgreSQL nests them)
            depth, end = 1, i + 2
            while end < n and depth:
                if sql.startswith("/*", end):
                    depth, end = depth + 1, end + 2
                elif sql.startswith("*/", end):
                    depth, end = depth - 1, end + 2
                else:
                    end += 1
            current.append(" ")
            i = end
            continue
        if char in "'\"":
            # E'...' strings take backslash escapes: E'\'' is one quote, not the end.
            escapes = char == "'" and i > 0 and sql[i - 1] in "Ee" and (
                i < 2 or not (sql[i - 2].isalnum() or sql[i - 2] in "_$"))
            end = i + 1
            while end < n:
                if escapes and sql[end] == "\\":
                    end += 2
                    continue
                if sql[end] == char:
                    if end + 1 < n and sql[end + 1] == char:
                        end += 2
                        continue
                    break
                end += 1
            current.append(sql[i:end + 1])
            i = end + 1
            continue
        if char == "$":
            match = re.match(r"\$[A-Za-z_0-9]*\$", sql[i:])
            if match:
                tag = match.group()
                end = sql.find(tag, i + len(tag))
                end = n if end < 0 else end + len(tag)
                current.append(sql[i:end])
                i = end
                continue
        if char == ";":
            text = "".join(current).strip()
            if text:
                statements.append(text)
            current = []
            i += 1
            continue
        current.append(char)
        i += 1
    text = "".join(current).strip()
    if text:
        statements.append(text)
    return statements


def _role_list(toks: list[Token], start: int) -> list[str]:
    """Comma-separated roles from toks[start] up to WITH / GRANTED / CASCADE / the end,
    without PUBLIC and CURRENT_USER-like keywords (a quoted "public" is a role)."""
    roles: list[str] = []
    for tok in toks[start:]:
        if tok.keyword in {"WITH", "GRANTED", "CASCADE", "RESTRICT", "IN"}:
            break
        if tok.keyword in _PSEUDO_ROLES or tok.keyword == "GROUP":
            continue
        if tok.kind in {"word", "quoted"}:
            roles.append(tok.name)
    return roles


def _last_keyword(toks: list[Token], keyword: str) -> int:
    for index in range(len(toks) - 1, -1, -1):
        if toks[index].keyword == keyword:
            return index
    return -1


@dataclass(frozen=True)
class DatabaseStatement:
    """One database-level statement of the dump, with the database name cut out."""

    group: str  # "owner", "setting", "role-setting", "privilege"
    before: str  # the statement up to the database name
    after: str  # the rest

    def for_database(self, quoted_name: str) -> str:
        return f"{self.before}{quoted_name}{self.after};"


@dataclass(frozen=True)
class DumpInfo:
    database: str | None  # the dumped database's name (from CREATE DATABASE)
    create_options: str  # "TEMPLATE = template0 ENCODING = 'UTF8' ..." (may be "")
    owner_roles: frozenset[str] = frozenset()
    privilege_roles: frozenset[str] = frozenset()
    database_statements: tuple[DatabaseStatement, ...] = field(default_factory=tuple)

    def needed_roles(self, *, no_owner: bool, no_privileges: bool) -> frozenset[str]:
        """The roles the restore will name, given pg_restore's --no-owner/--no-privileges."""
        return ((frozenset() if no_owner else self.owner_roles)
                | (frozenset() if no_privileges else self.privilege_roles))


def plain_statement(toks: list[Token]) -> bool:
    """Whether a statement lexes the same for any reader: no E'' string, backslash, dollar
    quote, psql variable (:name) or comment. pg_dump writes database statements this way
    (standard_conforming_strings on); one that is not is not replayed by drbackup."""
    for tok in toks:
        if tok.kind == "string" and (tok.text[0] in "Ee" or "\\" in tok.text):
            return False
        if tok.kind == "other" and tok.text in {"\\", "$", ":"}:
            return False
    return True


def _cut(statement: str, tok: Token, group: str) -> DatabaseStatement:
    return DatabaseStatement(group, statement[:tok.start], statement[tok.end:])


def parse_dump_sql(sql: str) -> DumpInfo:
    """The roles and database properties in `pg_restore --create --schema-only` output."""
    database: str | None = None
    create_options = ""
    owners: set[str] = set()
    grantees: set[str] = set()
    db_statements: list[DatabaseStatement] = []
    for statement in split_statements(sql):
        toks = tokens(statement)
        words = [t.keyword for t in toks]
        if len(toks) < 3:
            continue
        plain = plain_statement(toks)
        if words[:2] == ["CREATE", "DATABASE"] and database is None:
            database = toks[2].name
            create_options = _create_options(toks[3:])
            continue
        on_database = (plain and database is not None and len(toks) > 3
                       and any(words[i] == "DATABASE" and toks[i + 1].name == database
                               for i in range(len(toks) - 1)))
        if words[:2] == ["ALTER", "ROLE"] and "IN" in words and on_database:
            owners.add(toks[2].name)
            index = words.index("DATABASE")
            db_statements.append(_cut(statement, toks[index + 1], "role-setting"))
            continue
        if words[0] in {"GRANT", "REVOKE"} or words[:3] == ["ALTER", "DEFAULT", "PRIVILEGES"]:
            if words[:3] == ["ALTER", "DEFAULT", "PRIVILEGES"] and words[3:5] == ["FOR", "ROLE"]:
                grantees.update(_role_list(toks, 5)[:1])
            keyword = "TO" if "GRANT" in words and "REVOKE" not in words else "FROM"
            at = _last_keyword(toks, keyword)
            if at >= 0:
                grantees.update(_role_list(toks, at + 1))
            by = _last_keyword(toks, "BY")
            if by > 0 and words[by - 1] == "GRANTED":
                grantees.update(_role_list(toks, by + 1)[:1])
            if words[0] in {"GRANT", "REVOKE"} and on_database:
                index = words.index("DATABASE")
                db_statements.append(_cut(statement, toks[index + 1], "privilege"))
            continue
        if words[-3:-1] == ["OWNER", "TO"] and toks[-1].keyword not in _PSEUDO_ROLES:
            owners.add(toks[-1].name)
            if words[:2] == ["ALTER", "DATABASE"] and toks[2].name == database and plain:
                db_statements.append(_cut(statement, toks[2], "owner"))
            continue
        if words[:2] == ["ALTER", "DATABASE"] and plain and database is not None and (
                toks[2].name == database):
            db_statements.append(_cut(statement, toks[2], "setting"))
            continue
        if words[:3] == ["COMMENT", "ON", "DATABASE"] and plain and database is not None and (
                toks[3].name == database):
            db_statements.append(_cut(statement, toks[3], "setting"))
    return DumpInfo(database, create_options, frozenset(owners), frozenset(grantees),
                    tuple(db_statements))


def _create_options(toks: list[Token]) -> str:
    """The recognised `KEY = value` options of a CREATE DATABASE, re-joined; others dropped."""
    parts: list[str] = []
    index = 1 if toks and toks[0].keyword == "WITH" else 0
    while index + 2 < len(toks):
        key, equals, value = toks[index], toks[index + 1], toks[index + 2]
        if equals.text != "=":
            break
        if key.keyword in _CREATE_OPTIONS and value.kind in {"string", "word", "number"} and (
                plain_statement([value])):
            parts.append(f"{key.keyword} = {value.text}")
        index += 3
    return " ".join(parts)


def read_dump_info(pg_restore: str, env: Mapping[str, str],
                   feed: Callable[[IO[bytes]], None], *, timeout: float = 600) -> DumpInfo:
    """Run `pg_restore --create --schema-only --file=-` over the dump `feed` streams and parse it.

    Raises DumpError when pg_restore cannot read the dump."""
    return parse_dump_sql(read_dump_head(
        [pg_restore, "--create", "--schema-only", "--file=-"], env, feed, timeout=timeout))


def read_dump_head(argv: list[str], env: Mapping[str, str],
                   feed: Callable[[IO[bytes]], None], *, timeout: float = 600) -> str:
    """The output of a pg_restore that reads only the dump's head (its table of contents:
    `--schema-only`, `--list`) from the stream `feed` writes; the stream is cut when pg_restore
    stops reading.

    Raises DumpError when pg_restore cannot read the dump."""
    pg_restore = argv[0]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as errlog:
        try:
            process = children.start(argv, env=env, stdin="pipe", stdout=out, stderr=errlog)
        except FileNotFoundError:
            raise DumpError(f"{pg_restore} is not installed",
                            "install the PostgreSQL client tools or set bin_dir") from None
        assert process.stdin is not None
        try:
            feed(process.stdin)
        except BrokenPipeError:
            pass  # pg_restore read the table of contents and stopped: the usual end
        except BaseException:
            process.kill()
            process.wait()
            raise
        finally:
            with contextlib.suppress(BrokenPipeError, OSError):
                process.stdin.close()
        try:
            returncode = process.wait(timeout)
        except Exception:  # noqa: BLE001 - a hung pg_restore: stopped, then reported
            process.kill()
            process.wait()
            raise DumpError("pg_restore did not finish reading the dump's table of contents",
                            "check the snapshot with 'drbackup verify'") from None
        errlog.seek(0)
        tail = "\n".join(errlog.read().decode("utf-8", "replace").splitlines()
                         [-STDERR_TAIL_LINES:])
        if returncode != 0:
            raise DumpError(f"pg_restore cannot read the dump: {last_line(tail)}",
                            "check the snapshot with 'drbackup verify'", stderr_tail=tail)
        out.seek(0)
        return out.read().decode("utf-8", "replace")
