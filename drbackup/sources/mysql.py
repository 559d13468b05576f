"""MySQL/MariaDB sources: mariadb-dump/mysqldump --single-transaction --routines --events
--triggers, and the restore side (the mariadb/mysql client into a new or named database).

Credentials go in a defaults file (mode 0600, private directory) given as the FIRST argument
(--defaults-extra-file / --defaults-file must come first), never on the command line. The client
reads only that file (--defaults-file), with local infile off and without drbackup's
capabilities: see drbackup/sources/mysqlreplay.py for why a replayed dump needs that."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO

import drbackup.children as children
from drbackup.config.models import MysqlSource
from drbackup.errors import TargetRefusedError
from drbackup.sources.base import BackupPlan, DumpError
from drbackup.sources.dbargv import mariadb_dump_argv
from drbackup.sources.dumps import (
    PrivateDir,
    dump_plan,
    find_binary,
    last_line,
    python_module,
    read_password_file,
    run_tool,
)
from drbackup.sources.mysqlreplay import (
    client_argv,
    client_env,
    foreign_definers_sql,
    replay_dump,
)

FORMAT_SQL = "sql"
# Character set and collation names of MariaDB/MySQL: letters, digits, underscores. Read back
# from a snapshot's tags (written by whoever holds the agency's repository password) they are
# checked against this before they reach any SQL.
_CHARSET_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")

log = logging.getLogger(__name__)


def _option_value(value: str) -> str:
    """A value for a MySQL option file, quoted so '#', spaces and quotes survive."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def quote_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


@dataclass
class MyConnection:
    source: MysqlSource
    workdir: PrivateDir
    defaults_file: str

    def dump_binary(self) -> str:
        return find_binary(self.source.dump_binary, ["mariadb-dump", "mysqldump"])

    def client_binary(self) -> str:
        return find_binary(self.source.client_binary, ["mariadb", "mysql"])

    def client_argv(self, *args: str) -> list[str]:
        return client_argv(self.client_binary(), self.defaults_file, *args)

    def query(self, sql: str) -> list[str]:
        result = run_tool(self.client_argv("-N", "-B"), client_env(), input_text=sql)
        if result.returncode != 0:
            raise DumpError(f"MySQL source {self.source.id!r}: {last_line(result.stderr_tail)}",
                            "check host, port, user, password_file and that the server is up",
                            stderr_tail=result.stderr_tail)
        return [line for line in result.stdout.splitlines() if line.strip()]

    def cleanup(self) -> None:
        self.workdir.cleanup()


def connect(source: MysqlSource) -> MyConnection:
    """A private defaults file for this source. Raises DumpError when the password file cannot
    be read."""
    lines = ["[client]", f"user={_option_value(source.user)}"]
    if source.password_file is not None:
        lines.append(f"password={_option_value(read_password_file(source.password_file))}")
    if source.socket is not None:
        lines.append(f"socket={_option_value(str(source.socket))}")
    else:
        lines += [f"host={_option_value(source.host)}", f"port={source.port}"]
        if source.host not in ("localhost",):
            lines.append("protocol=TCP")
    workdir = PrivateDir("drbackup-mysql-")
    path = workdir.write_secret("client.cnf", "\n".join(lines) + "\n")
    return MyConnection(source, workdir, str(path))


@dataclass(frozen=True)
class DatabaseCharset:
    """A database's default character set and collation: the dump has no CREATE DATABASE, so
    they are recorded beside it (the snapshot's charset= and collation= tags) and a restore
    creates the database with them."""

    charset: str
    collation: str

    def tags(self) -> list[str]:
        return [f"charset={self.charset}", f"collation={self.collation}"]

    def clause(self) -> str:
        """` CHARACTER SET x COLLATE y` for CREATE DATABASE (names checked when made)."""
        return f" CHARACTER SET {self.charset} COLLATE {self.collation}"

    @classmethod
    def of(cls, charset: str, collation: str) -> DatabaseCharset | None:
        """The pair when both are plain names, else None."""
        if _CHARSET_NAME.fullmatch(charset) and _CHARSET_NAME.fullmatch(collation):
            return cls(charset, collation)
        return None


def recorded_charset(charsets: Sequence[str], collations: Sequence[str]
                     ) -> DatabaseCharset | None:
    """The character set a snapshot recorded (the values of its charset= and collation= tags);
    None when it recorded none (a snapshot made before drbackup recorded it).

    Raises TargetRefusedError when the tags are not one valid name each (forged tags)."""
    if not charsets and not collations:
        return None
    found = (DatabaseCharset.of(charsets[0], collations[0])
             if len(charsets) == 1 and len(collations) == 1 else None)
    if found is None:
        shown = ", ".join(f"{v[:40]!r}" for v in [*charsets, *collations][:4])
        raise TargetRefusedError(
            f"the snapshot's charset=/collation= tags are not one plain name each ({shown})",
            "drbackup writes one of each, letters, digits and _ only: check who wrote the "
            "snapshot; nothing was restored")
    return found


def database_charset(conn: MyConnection, database: str) -> DatabaseCharset | None:
    """The database's default character set and collation; None when it does not exist.
    Raises DumpError when the server cannot be asked."""
    rows = conn.query(
        "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM "  # noqa: S608
        f"information_schema.SCHEMATA WHERE SCHEMA_NAME = {quote_literal(database)};")
    if not rows:
        return None
    charset, _, collation = rows[0].partition("\t")
    return DatabaseCharset.of(charset, collation)


GLOBALS = "_globals"  # the database= tag of the users-and-grants snapshot (as PostgreSQL's)
FORMAT_GRANTS = "grants"
# Databases of the server itself: never dumped by all = true.
SYSTEM_DATABASES = ("information_schema", "performance_schema", "sys", "mysql")


def list_databases(conn: MyConnection) -> list[tuple[str, DatabaseCharset | None]]:
    """Every database of the server but the system ones and the source's exclude_databases,
    with its character set. Raises DumpError when the server cannot be asked."""
    excluded = {*SYSTEM_DATABASES, *conn.source.exclude_databases}
    found = []
    for row in conn.query("SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, "
                          "DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
                          "ORDER BY SCHEMA_NAME;"):
        name, charset, collation = [*row.split("\t"), "", ""][:3]
        if name not in excluded:
            found.append((name, DatabaseCharset.of(charset, collation)))
    return found


def _database_plan(conn: MyConnection, database: str, charset: DatabaseCharset | None,
                   index: int) -> BackupPlan:
    source = conn.source
    command = mariadb_dump_argv(conn.dump_binary(), conn.defaults_file, source, database)
    return dump_plan(command, workdir=conn.workdir, name=f"db{index}", min_size=source.min_size,
                     timeout=source.timeout, stdin_filename=f"{database}.sql", env={},
                     tags=[f"database={database}", f"format={FORMAT_SQL}",
                           *(charset.tags() if charset else [])],
                     label=f"dump of database {database!r}")


def plan_mysql(source: MysqlSource) -> list[BackupPlan]:
    """The dump of the source's database, tagged with its character set and collation; with
    all = true one per database of the server, plus its users and grants (sources/mysqlgrants).

    Raises DumpError when the server cannot be asked (it could not be dumped either)."""
    conn = connect(source)
    try:
        if source.all:
            databases = list_databases(conn)
        else:
            assert source.database is not None  # the model requires one without all
            databases = [(source.database, database_charset(conn, source.database))]
        plans = [_database_plan(conn, name, charset, index)
                 for index, (name, charset) in enumerate(databases)]
        if source.all and source.globals:
            command = python_module("drbackup.sources.mysqlgrants_dump", "--defaults-file",
                                    conn.defaults_file, "--client", conn.client_binary())
            plans.append(dump_plan(
                command, workdir=conn.workdir, name="globals", min_size=1,
                timeout=source.timeout, stdin_filename="users-and-grants.sql", env={},
                tags=[f"database={GLOBALS}", f"format={FORMAT_GRANTS}"],
                label="users and grants"))
    except BaseException:
        conn.cleanup()
        raise
    if plans:
        plans[-1].cleanup.append(conn.cleanup)
    else:
        conn.cleanup()
    return plans


def grant_ident(database: str) -> str:
    """A database name for GRANT ... ON `name`.*, where `_` and `%` are wildcards: escaped, so
    a grant on drbackup_drill_1 does not also cover drbackupXdrill_1."""
    return quote_ident(database.replace("\\", "\\\\").replace("_", "\\_")
                       .replace("%", "\\%"))


def create_replay_user(admin: MyConnection, database: str) -> MysqlSource:
    """A user named like `database` (a drill's scratch database) with all privileges on it and
    nothing else (no FILE, SUPER, SET USER, PROCESS, CREATE USER, GRANT OPTION), on the host
    pattern `admin` itself matched, with a random password in `admin`'s private directory;
    returned as a MysqlSource of the same server. Raises DumpError when `admin` may not create
    users or grant (the user is then removed again)."""
    password = secrets.token_hex(16)
    host = admin.query("SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', -1);")[0]
    account = f"{quote_literal(database)}@{quote_literal(host)}"
    try:
        admin.query(f"CREATE USER {account} IDENTIFIED BY {quote_literal(password)};\n"
                    f"GRANT ALL PRIVILEGES ON {grant_ident(database)}.* TO {account};")
    except DumpError:
        drop_replay_user(admin, database)
        raise
    path = admin.workdir.write_secret(f"{database}.password", password + "\n")
    return admin.source.model_copy(update={"user": database, "password_file": path})


def drop_replay_user(admin: MyConnection, database: str) -> None:
    """Drop every account named `database` (what create_replay_user made); no error when none
    is left or `admin` may not read the user list."""
    with contextlib.suppress(DumpError):
        hosts = admin.query("SELECT host FROM mysql.user WHERE user = "  # noqa: S608
                            f"{quote_literal(database)};")
        for host in hosts:
            admin.query(f"DROP USER IF EXISTS {quote_literal(database)}@{quote_literal(host)};")


def _may_name_other_definers(conn: MyConnection) -> bool:
    """Whether the connected user holds SUPER or SET USER (may create objects defined as
    anyone). Unknown (an old server, no information_schema rights) counts as no."""
    try:
        rows = conn.query(
            "SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = "
            "CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', "
            "SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''') "
            "AND PRIVILEGE_TYPE IN ('SUPER', 'SET USER');")
    except DumpError:
        return False
    return bool(rows) and rows[0] != "0"


def _refuse_foreign_definers(replayer: MyConnection, into: str) -> None:
    """After a replay every view, routine, trigger and event of `into` must be defined by the
    replaying user (the rewrite made every DEFINER clause CURRENT_USER). One that is not was
    hidden from the rewrite (SQL built at run time, another sql_mode or character set): each is
    dropped at once, so it cannot run as the user it names, and the replay fails."""
    rows = [line.split("\t") for line in replayer.query(foreign_definers_sql(
        quote_literal(into)))]
    found = [row for row in rows if len(row) == 3]
    if not found:
        return
    for kind, name, _definer in found:
        with contextlib.suppress(DumpError):
            replayer.query(f"DROP {kind} IF EXISTS {quote_ident(into)}.{quote_ident(name)};")
    listed = ", ".join(f"{kind.lower()} {name} as {definer}" for kind, name, definer in found[:5])
    raise DumpError(
        f"the dump defined {len(found)} object(s) as another user despite the DEFINER rewrite "
        f"({listed}); they were dropped",
        "the dump is crafted or builds SQL at run time; do not use this restore: drop the "
        f"database {into!r} and examine the dump by hand")


@dataclass(frozen=True)
class MyRestoreResult:
    database: str
    created: bool
    charset: DatabaseCharset | None = None  # what the database was (re)created with


def sandbox_args(client: str) -> tuple[str, ...]:
    """("--sandbox",) when this client has it, else (). In sandbox mode the client refuses its
    own commands (`system`, `source`, `tee`...) in the dump it replays: a dump is data, and a
    crafted one (CVE-2024-21096) must not run commands on this host as drbackup."""
    done = children.probe([client, "--no-defaults", "--sandbox", "--version"],
                          env=client_env())
    if done is not None and done.returncode == 0:
        return ("--sandbox",)
    return ()


def restore_mysql(source: MysqlSource, into: str, feed: Callable[[IO[bytes]], None], *,
                  overwrite: bool = False, clean: bool = False,
                  extra_args: Sequence[str] = (), replay_as: MysqlSource | None = None,
                  charset: DatabaseCharset | None = None) -> MyRestoreResult:
    """Replay a SQL dump streamed by `feed` into database `into` (created when missing, with
    the dump's recorded `charset`; with clean, dropped and created anew with the character set
    it had) as `replay_as` (default: the source's own user).

    The client runs in --sandbox mode when it has it, local infile off, without capabilities,
    the dump's DEFINER clauses made CURRENT_USER; `extra_args` go to it too. Raises
    TargetRefusedError for an existing non-empty database without overwrite, DumpError when
    the client fails."""
    conn = connect(source)
    try:
        literal = quote_literal(into)
        exists = bool(conn.query(
            f"SELECT 1 FROM information_schema.schemata WHERE schema_name = {literal};"))  # noqa: S608
        created = False
        if exists:
            objects = conn.query(
                f"SELECT (SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = "  # noqa: S608
                f"{literal}) + (SELECT COUNT(*) FROM information_schema.routines "
                f"WHERE routine_schema = {literal});")
            if int(objects[0]) > 0 and not overwrite:
                raise TargetRefusedError(
                    f"database {into!r} exists and is not empty",
                    "restore into a new database name, or pass --overwrite (with --clean to "
                    "drop it first)")
            if clean:
                # In place: the database keeps the character set it has (not the server's
                # default, which a bare CREATE DATABASE would give it).
                charset = database_charset(conn, into) or charset
                conn.query(f"DROP DATABASE {quote_ident(into)}; CREATE DATABASE "
                           f"{quote_ident(into)}{charset.clause() if charset else ''};")
                created = True
            else:
                charset = database_charset(conn, into)
        else:
            if charset is None:
                log.warning(
                    "restore-db into %r: the snapshot recorded no character set (made before "
                    "drbackup recorded it): the database gets the server's default; check it "
                    "with SHOW CREATE DATABASE", into, extra={"event": "restore_no_charset"})
            conn.query(f"CREATE DATABASE {quote_ident(into)}"
                       f"{charset.clause() if charset else ''};")
            created = True
        replayer = conn if replay_as is None else connect(replay_as)
        try:
            if replay_as is None and _may_name_other_definers(conn):
                log.warning(
                    "restore-db into %r connects as a user with SUPER or SET USER: a dump that "
                    "hides a DEFINER from the rewrite gets objects running as another user until "
                    "the check after the replay drops them; restore a dump you do not trust "
                    "as a user with rights on that database only", into,
                    extra={"event": "restore_privileged"})
            client = replayer.client_binary()
            replay_dump(client, replayer.defaults_file, into, feed,
                        sandbox=sandbox_args(client), extra_args=extra_args,
                        what=f"{os.path.basename(client)} into {into!r}")
            _refuse_foreign_definers(replayer, into)
        finally:
            if replayer is not conn:
                replayer.cleanup()
        return MyRestoreResult(into, created, charset)
    finally:
        conn.cleanup()
