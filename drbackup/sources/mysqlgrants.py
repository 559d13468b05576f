"""A MariaDB/MySQL server's users and grants (#17 item 8): dumped as `SHOW CREATE USER` and
`SHOW GRANTS FOR` each account (a source with all = true; the snapshot database=_globals), and
read back for a replay that can only ever create accounts and grant them rights.

The snapshot is agency-controlled (whoever holds the repository password can write one tagged
database=_globals), so a replay never sends its text to a server. Every statement is lexed and
checked to be exactly `CREATE USER <one account> <options>`, `GRANT <privileges> ON <object> TO
<one account> <options>`, `GRANT <role> TO <one account>` or `SET DEFAULT ROLE <role> FOR <one
account>`: no second statement, no comment, no `OR REPLACE` / `IF NOT EXISTS`, no list of
accounts, no PROXY, nothing but names, quoted strings, numbers and the punctuation of a grant.
One statement that is not refuses the whole snapshot before anything runs. What is replayed is
rebuilt from the checked tokens, in a session whose sql_mode quotes as the lexer does
(mysqlreplay.QUOTING_RESET), UTF-8 only, the client in --sandbox.

Accounts that exist on the target are never changed (their statements are left out, named in one
warning), nor the account the restore connects as; a GRANT is replayed only for an account this
replay created. An account whose statements fail is dropped again and named. Roles are not
dumped (creating one would grant it to the restoring account): an account granted a role the
target lacks fails that way, loudly."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO

from drbackup.config.models import MysqlSource
from drbackup.errors import DbRestoreRefusedError
from drbackup.sources.base import DumpError

HEADER = "-- drbackup MariaDB/MySQL users and grants v1\n"
# A few KiB per hundred accounts; anything near this is not a grants dump.
MAX_GRANTS_BYTES = 16 << 20
# Accounts a fresh server has of its own: never dumped (a restore must not replace them).
SYSTEM_USERS = ("root", "mariadb.sys", "mysql", "mysql.sys", "mysql.session",
                "mysql.infoschema", "PUBLIC", "")

Account = tuple[str, str]  # (user, host as written, compared in lower case)
Feed = Callable[[IO[bytes]], None]

log = logging.getLogger(__name__)

_TOKEN = re.compile(
    r"""(?P<space>\s+)
      |(?P<comment>--[ \t][^\n]*)
      |(?P<ident>`(?:[^`]|``)*`)
      |(?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
      |(?P<number>0x[0-9A-Fa-f]+|[0-9]+(?:\.[0-9]+)?)
      |(?P<word>[A-Za-z_$][A-Za-z0-9_$]*)
      |(?P<punct>[@.*,();])""", re.VERBOSE | re.DOTALL)
_OBJECT_KINDS = {"TABLE", "FUNCTION", "PROCEDURE", "PACKAGE"}
_REFUSED_WORDS = {"PROXY"}


class GrantsDumpError(DbRestoreRefusedError):
    """The snapshot is not a users-and-grants dump drbackup would replay (exit 31: refused
    before anything changed)."""


@dataclass(frozen=True)
class Token:
    kind: str  # ident, string, number, word, punct
    text: str  # as written (ident/string with their quotes)

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else self.text

    def name(self) -> str | None:
        """The value of a quoted name (`ident` or 'string'), else None."""
        if self.kind == "ident":
            return self.text[1:-1].replace("``", "`")
        if self.kind == "string":
            return _unquote_string(self.text)
        return None


_ESCAPES = {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a"}


def _unquote_string(text: str) -> str:
    quote, body = text[0], text[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            out.append(_ESCAPES.get(body[i + 1], body[i + 1]))
            i += 2
        elif char == quote and i + 1 < len(body):
            out.append(quote)
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class GrantStatement:
    verb: str  # "CREATE USER", "GRANT" or "SET DEFAULT ROLE"
    account: Account
    sql: str  # rebuilt from the checked tokens

    @property
    def key(self) -> Account:
        return (self.account[0], self.account[1].lower())


def _refuse(number: int, why: str, tokens: Sequence[Token] = ()) -> GrantsDumpError:
    shown = " ".join(t.text for t in tokens)[:80]
    return GrantsDumpError(
        f"the users-and-grants snapshot's statement {number} {why}"
        + (f" ({shown!r})" if shown else ""),
        "drbackup writes only CREATE USER and GRANT statements for one account each: check who "
        "wrote the snapshot; nothing was replayed")


def _lex(text: str) -> list[list[Token]]:
    """Statements (token lists, without their `;`) of the dump. Raises GrantsDumpError for a
    character outside the grammar, an unterminated quote or a statement without its `;`."""
    statements: list[list[Token]] = []
    current: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _refuse(len(statements) + 1, f"has a character drbackup does not replay "
                          f"({text[pos:pos + 20]!r})")
        pos = match.end()
        kind = match.lastgroup or ""
        if kind in ("space", "comment"):
            continue  # never sent: what is replayed is rebuilt from the tokens
        token = Token(kind, match.group())
        if kind in ("ident", "string") and re.search(r"[\x00-\x1f\x7f\\]", token.text):
            # Never in a real account name or password hash; the client would read a
            # backslash or a line break differently from this lexer.
            raise _refuse(len(statements) + 1, "has a backslash or control character in a "
                          "quoted name", [token])
        if token.text == ";":
            if not current:
                raise _refuse(len(statements) + 1, "is empty")
            statements.append(current)
            current = []
        else:
            current.append(token)
    if current:
        raise _refuse(len(statements) + 1, "does not end with ';'", current)
    return statements


def _account(tokens: Sequence[Token], at: int, number: int) -> tuple[Account, int]:
    """`user`@`host` at tokens[at]: ((user, host), index after it)."""
    part = tokens[at:at + 3]
    if (len(part) < 3 or part[1].text != "@" or part[0].name() is None
            or part[2].name() is None):
        raise _refuse(number, "does not name one account as `user`@`host`", tokens)
    user, host = part[0].name(), part[2].name()
    assert user is not None and host is not None
    return (user, host), at + 3


def _check_options(tokens: Sequence[Token], number: int) -> None:
    """What follows the account: words, strings and numbers only (IDENTIFIED BY PASSWORD '...',
    REQUIRE SSL, WITH GRANT OPTION, resource limits, PASSWORD EXPIRE, ACCOUNT LOCK)."""
    for token in tokens:
        if token.kind not in ("word", "string", "number"):
            raise _refuse(number, f"has {token.text!r} after its account", tokens)


def _check_privileges(tokens: Sequence[Token], number: int) -> None:
    """SELECT, INSERT (`col`, `col`), ALL PRIVILEGES ...: words, commas, column lists."""
    if not tokens:
        raise _refuse(number, "grants nothing")
    depth = 0
    for token in tokens:
        if token.text == "(":
            depth += 1
        elif token.text == ")":
            depth -= 1
        elif (depth == 1 and token.kind == "ident") or token.text == "," or (
                depth == 0 and token.kind == "word"):
            pass
        else:
            raise _refuse(number, f"has {token.text!r} in its privilege list", tokens)
        if depth not in (0, 1):
            raise _refuse(number, "has unbalanced parentheses", tokens)
    if depth != 0:
        raise _refuse(number, "has unbalanced parentheses", tokens)


def _check_object(tokens: Sequence[Token], number: int) -> None:
    """[TABLE|FUNCTION|PROCEDURE|PACKAGE [BODY]] *.* | * | `db`.* | `db`.`name`."""
    rest = list(tokens)
    if rest and rest[0].upper in _OBJECT_KINDS:
        rest = rest[2:] if rest[0].upper == "PACKAGE" and len(rest) > 1 and (
            rest[1].upper == "BODY") else rest[1:]
    texts = [t.text if t.kind == "punct" else t.kind for t in rest]
    if texts not in (["*", ".", "*"], ["*"], ["ident", ".", "*"], ["ident", ".", "ident"],
                     ["ident"]):
        raise _refuse(number, "grants on something that is not a database, table or routine",
                      tokens)


def _render(tokens: Sequence[Token]) -> str:
    """The statement from its checked tokens: no space around `@` and `.`."""
    out = ""
    glued = True
    for token in tokens:
        joins = token.text in ("@", ".")
        out += token.text if glued or joins else " " + token.text
        glued = joins
    return out


def _statement(tokens: list[Token], number: int) -> GrantStatement:
    words = [t.upper for t in tokens]
    if any(t.kind == "word" and t.upper in _REFUSED_WORDS for t in tokens):
        raise _refuse(number, "is a PROXY grant (an account acting as another)", tokens)
    if words[:2] == ["CREATE", "USER"]:
        account, after = _account(tokens, 2, number)
        _check_options(tokens[after:], number)
        return GrantStatement("CREATE USER", account, _render(tokens))
    if words[:1] == ["GRANT"] and "TO" in words:
        to = words.index("TO")
        account, after = _account(tokens, to + 1, number)
        if "ON" in words[:to]:
            on = words.index("ON")
            _check_privileges(tokens[1:on], number)
            _check_object(tokens[on + 1:to], number)
        elif to != 2 or tokens[1].kind not in ("ident", "word", "string"):
            raise _refuse(number, "grants neither privileges ON an object nor one role",
                          tokens)
        _check_options(tokens[after:], number)
        return GrantStatement("GRANT", account, _render(tokens))
    if words[:3] == ["SET", "DEFAULT", "ROLE"] and len(tokens) == 8 and words[4] == "FOR" and (
            tokens[3].kind in ("ident", "string") or words[3] == "NONE"):
        # SHOW GRANTS' last line for an account with a default role (MariaDB).
        account, _ = _account(tokens, 5, number)
        return GrantStatement("SET DEFAULT ROLE", account, _render(tokens))
    raise _refuse(number, "is not CREATE USER or GRANT", tokens)


def parse_grants(dump: bytes) -> list[GrantStatement]:
    """Every statement of a users-and-grants dump, checked (see the module doc).

    Raises GrantsDumpError for a dump that is not UTF-8 or has any statement that is not
    exactly a CREATE USER or GRANT for one account."""
    try:
        text = dump.decode("utf-8")
    except UnicodeDecodeError:
        raise _refuse(1, "is not UTF-8 text") from None
    return [_statement(tokens, number)
            for number, tokens in enumerate(_lex(text), start=1)]


# -- replay ---------------------------------------------------------------------------------


def unescape_batch(value: str) -> str:
    """A field of `mariadb -B` output (\\n, \\t, \\0, \\\\ escaped)."""
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "0": "\0"}.get(m.group(1),
                                                                            m.group(1)), value)


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"




@dataclass
class GrantsReplay:
    """What a replay did, by account (`user@host`)."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)  # left alone
    orphans: list[str] = field(default_factory=list)  # grants without a CREATE USER: left out
    failed: list[str] = field(default_factory=list)  # dropped again
    statements: int = 0


def shown(account: Account) -> str:
    return f"{account[0]}@{account[1]}"


def read_bounded(feed: Feed) -> bytes:
    """What `feed` writes, up to MAX_GRANTS_BYTES. Raises GrantsDumpError beyond."""
    parts: list[bytes] = []
    size = 0

    class Sink:
        def write(self, data: bytes) -> int:
            nonlocal size
            size += len(data)
            if size > MAX_GRANTS_BYTES:
                raise GrantsDumpError(
                    f"the users-and-grants snapshot is larger than {MAX_GRANTS_BYTES >> 20} MiB",
                    "it is not one drbackup made; nothing was replayed")
            parts.append(bytes(data))
            return len(data)

        def flush(self) -> None:
            pass

    feed(Sink())  # type: ignore[arg-type]  # write/flush is all a feed uses
    return b"".join(parts)


def replay_grants(statements: Sequence[GrantStatement], existing: set[Account],
                  me: Account, run: Callable[[str], None],
                  drop: Callable[[Account], None]) -> GrantsReplay:
    """Create each account the dump has and the target lacks, with its grants: `run` executes
    one account's statements (raising DumpError), `drop` removes an account whose statements
    failed. Existing accounts and `me` are left alone and named in one warning."""
    present = {(user, host.lower()) for user, host in existing} | {(me[0], me[1].lower())}
    by_account: dict[Account, list[GrantStatement]] = {}
    created_here: set[Account] = set()
    for statement in statements:
        if statement.verb == "CREATE USER" and statement.key not in present:
            created_here.add(statement.key)
        by_account.setdefault(statement.key, []).append(statement)
    result = GrantsReplay()
    for key, group in by_account.items():
        account = group[0].account
        if key not in created_here:
            (result.existing if key in present or any(s.verb == "CREATE USER" for s in group)
             else result.orphans).append(shown(account))
            continue
        # The CREATE USER first: a GRANT may run only for the account this replay created.
        ordered = sorted(group, key=lambda s: s.verb != "CREATE USER")
        try:
            run(";\n".join(s.sql for s in ordered) + ";\n")
        except DumpError as exc:
            drop(account)
            result.failed.append(f"{shown(account)} ({exc.message[:120]})")
            continue
        result.created.append(shown(account))
        result.statements += len(ordered)
    if result.existing:
        listed = ", ".join(result.existing[:10]) + (
            f" and {len(result.existing) - 10} more" if len(result.existing) > 10 else "")
        log.warning("the users-and-grants snapshot's %d account(s) that exist on the target "
                    "were left unchanged (their password and grants stay as they are): %s",
                    len(result.existing), listed, extra={"event": "grants_existing_kept"})
    if result.orphans:
        log.warning("the users-and-grants snapshot grants to %d account(s) it does not create; "
                    "left out: %s", len(result.orphans), ", ".join(result.orphans[:10]),
                    extra={"event": "grants_orphans_left_out"})
    return result


def restore_grants(source: MysqlSource, feed: Feed) -> GrantsReplay:
    """Replay the users-and-grants dump `feed` writes onto the server `source` names (see the
    module doc). Raises GrantsDumpError (nothing replayed: a statement is not one drbackup
    replays), DumpError (the server cannot be asked, or some accounts failed: the others are
    created, the failed ones dropped again and named)."""
    from drbackup.sources import mysql
    from drbackup.sources.dumps import last_line, run_tool
    from drbackup.sources.mysqlreplay import QUOTING_RESET, client_env

    statements = parse_grants(read_bounded(feed))
    conn = mysql.connect(source)
    try:
        user, _, host = unescape_batch(conn.query("SELECT CURRENT_USER();")[0]).rpartition("@")
        existing: set[Account] = set()
        for row in conn.query("SELECT user, host FROM mysql.user;"):
            fields = [unescape_batch(v) for v in row.split("\t")]
            if len(fields) == 2:
                existing.add((fields[0], fields[1]))
        sandbox = mysql.sandbox_args(conn.client_binary())

        def run(sql: str) -> None:
            done = run_tool(conn.client_argv("-N", "-B", "--default-character-set=utf8mb4",
                                             *sandbox), client_env(),
                            input_text=QUOTING_RESET.decode() + sql)
            if done.returncode != 0:
                raise DumpError(last_line(done.stderr_tail))

        def drop(account: Account) -> None:
            with contextlib.suppress(DumpError):
                conn.query(f"DROP USER IF EXISTS {quote(account[0])}@{quote(account[1])};")

        result = replay_grants(statements, existing, (user, host), run, drop)
    finally:
        conn.cleanup()
    if result.failed:
        raise DumpError(
            f"{len(result.failed)} account(s) of the users-and-grants snapshot could not be "
            f"created: {'; '.join(result.failed[:5])} ({len(result.created)} created)",
            "the failed accounts were dropped again; fix the cause (a grant on a table or "
            "routine needs the database restored first; a missing authentication plugin or "
            "role) and restore --database _globals again: created ones are kept")
    return result
