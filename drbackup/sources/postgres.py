"""PostgreSQL sources: pg_dump in custom format per database (or every database of a server plus
pg_dumpall --globals-only), and the restore side (pg_restore into a new or named database).

The password never reaches argv: it goes into a PGPASSFILE (mode 0600) generated for each run in
a private directory, or the user's own passfile / service file is named in the environment."""

from __future__ import annotations

import logging
import os
import re
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO

from drbackup.config.models import PostgresSource
from drbackup.errors import TargetRefusedError
from drbackup.sources.base import BackupPlan, DumpError
from drbackup.sources.dbargv import pg_dump_argv, pg_restore_argv
from drbackup.sources.dumps import (
    PrivateDir,
    dump_plan,
    feed_tool,
    find_binary,
    last_line,
    read_password_file,
    run_tool,
)
from drbackup.sources.pgglobals import warn_before_replay
from drbackup.sources.sqlreplay import replay_sql

GLOBALS = "_globals"
FORMAT_CUSTOM = "custom"
FORMAT_SQL = "sql"
_KV = re.compile(r"\s*([A-Za-z_]+)\s*=\s*('(?:[^'\\]|\\.)*'|\S*)")

log = logging.getLogger(__name__)


def _is_uri(dsn: str) -> bool:
    return dsn.startswith(("postgresql://", "postgres://"))


def _quote_kv(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def dsn_database(dsn: str) -> str | None:
    """The database a DSN names, if it names one."""
    if _is_uri(dsn):
        path = urllib.parse.urlsplit(dsn).path.lstrip("/")
        return urllib.parse.unquote(path) or None
    found = None
    for key, value in _KV.findall(dsn):
        if key == "dbname":
            found = value[1:-1].replace("\\'", "'").replace("\\\\", "\\") if (
                value.startswith("'")) else value
    return found


def dsn_with_database(dsn: str, database: str) -> str:
    """The same connection, to another database of the server."""
    if _is_uri(dsn):
        parts = urllib.parse.urlsplit(dsn)
        return urllib.parse.urlunsplit(parts._replace(path="/" + urllib.parse.quote(database)))
    # libpq keyword/value strings: a later keyword overrides an earlier one.
    return f"{dsn} dbname={_quote_kv(database)}"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _pgpass_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


@dataclass
class PgConnection:
    """How to reach the server: binaries, and an environment carrying the password file."""

    source: PostgresSource
    env: dict[str, str]
    workdir: PrivateDir | None

    def tool(self, name: str) -> str:
        return find_binary(None, [name], self.source.bin_dir)

    def child_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def cleanup(self) -> None:
        if self.workdir is not None:
            self.workdir.cleanup()

    def psql(self, dsn: str, sql: str) -> list[str]:
        """Rows (one line each, fields separated by |) of sql. Raises DumpError on failure."""
        result = run_tool([self.tool("psql"), "-X", "-w", "-q", "-A", "-t", "-v",
                           "ON_ERROR_STOP=1", "-d", dsn], self.child_env(), input_text=sql)
        if result.returncode != 0:
            raise DumpError(f"PostgreSQL source {self.source.id!r}: "
                            f"{last_line(result.stderr_tail)}",
                            "check the dsn, that the server is up and the password",
                            stderr_tail=result.stderr_tail)
        return [line for line in result.stdout.splitlines() if line.strip()]


def connect(source: PostgresSource) -> PgConnection:
    """The environment for this source's tools; a private PGPASSFILE when password_file is set.

    Raises DumpError when the password file cannot be read."""
    env = {"PGAPPNAME": "drbackup", "PGCONNECT_TIMEOUT": "30"}
    workdir = None
    if source.password_file is not None:
        password = read_password_file(source.password_file)
        workdir = PrivateDir("drbackup-pg-")
        passfile = workdir.write_secret("pgpass", f"*:*:*:*:{_pgpass_escape(password)}\n")
        env["PGPASSFILE"] = str(passfile)
    elif source.passfile is not None:
        env["PGPASSFILE"] = str(source.passfile)
    if source.service_file is not None:
        env["PGSERVICEFILE"] = str(source.service_file)
    return PgConnection(source, env, workdir)


def list_databases(conn: PgConnection) -> list[str]:
    rows = conn.psql(conn.source.dsn, "SELECT datname FROM pg_database "
                     "WHERE datallowconn AND NOT datistemplate ORDER BY datname;")
    excluded = set(conn.source.exclude_databases)
    return [name for name in rows if name not in excluded]


def plan_postgres(source: PostgresSource) -> list[BackupPlan]:
    """One plan per database (pg_dump -Fc), plus the globals with all = true.

    Raises DumpError when the databases cannot be listed or the password file read."""
    conn = connect(source)
    try:
        workdir = conn.workdir or PrivateDir("drbackup-pg-")
        if conn.workdir is None:
            conn.workdir = workdir
        databases = list_databases(conn) if source.all else [dsn_database(source.dsn) or source.id]
        plans: list[BackupPlan] = []
        for index, database in enumerate(databases):
            dsn = dsn_with_database(source.dsn, database) if source.all else source.dsn
            command = pg_dump_argv(conn.tool("pg_dump"), source, dsn)
            plans.append(dump_plan(
                command, workdir=workdir, name=f"db{index}", min_size=source.min_size,
                timeout=source.timeout, stdin_filename=f"{database}.pgdump", env=conn.env,
                tags=[f"database={database}", f"format={FORMAT_CUSTOM}"],
                label=f"pg_dump of database {database!r}"))
        if source.all and source.globals:
            command = [conn.tool("pg_dumpall"), "--globals-only", "--no-password",
                       f"--dbname={source.dsn}"]
            plans.append(dump_plan(
                command, workdir=workdir, name="globals", min_size=1, timeout=source.timeout,
                stdin_filename="globals.sql", env=conn.env,
                tags=[f"database={GLOBALS}", f"format={FORMAT_SQL}"],
                label="pg_dumpall --globals-only"))
    except BaseException:
        conn.cleanup()
        raise
    if plans:
        plans[-1].cleanup.append(conn.cleanup)
    else:
        conn.cleanup()
    return plans


# -- restore --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PgRestoreResult:
    database: str
    created: bool


def _target_dsn(source: PostgresSource, into: str) -> tuple[str, str]:
    """(dsn of the target database, its name); `into` is a database name or a DSN."""
    if _is_uri(into) or "=" in into:
        name = dsn_database(into)
        if not name:
            raise TargetRefusedError(f"restore target {into!r} names no database",
                                     "give a database name or a DSN with a database")
        if into != source.dsn and ("password" in into.lower()):
            raise TargetRefusedError("restore target DSN contains a password",
                                     "use the source's password_file or a passfile instead")
        return into, name
    return dsn_with_database(source.dsn, into), into


def restore_postgres(source: PostgresSource, into: str, feed: Callable[[IO[bytes]], None], *,
                     dump_format: str = FORMAT_CUSTOM, overwrite: bool = False,
                     clean: bool = False, extra_args: Sequence[str] = (),
                     use_list: str | None = None) -> PgRestoreResult:
    """Restore a custom-format dump streamed by `feed` into database `into` (created when
    missing) with pg_restore; a globals dump (SQL) is replayed with psql.

    `extra_args` go to pg_restore (e.g. --no-owner --no-privileges for a server that lacks
    the dump's roles), then the source's restore_args; `use_list` names a pg_restore list
    file of the entries to restore (a partial restore). Raises TargetRefusedError for an
    existing non-empty database without overwrite, DumpError when pg_restore fails."""
    conn = connect(source)
    try:
        target_dsn, name = _target_dsn(source, into)
        admin_dsn = dsn_with_database(target_dsn, "postgres")
        if dump_format == FORMAT_SQL:
            feed = warn_before_replay(lambda sql: conn.psql(admin_dsn, sql), feed)
            replay_sql(conn.tool("psql"), ["-d", admin_dsn], conn.child_env(), feed,
                       what="psql (globals)")
            return PgRestoreResult(name, created=False)
        exists = bool(conn.psql(admin_dsn, (
            f"SELECT 1 FROM pg_database WHERE datname = {quote_literal(name)};")))  # noqa: S608
        created = False
        if exists:
            relations = conn.psql(target_dsn, (
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
                "AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%';"))
            if int(relations[0]) > 0 and not overwrite:
                raise TargetRefusedError(
                    f"database {name!r} exists and is not empty",
                    "restore into a new database name, or pass --overwrite (with --clean to "
                    "drop the existing objects first)")
        else:
            conn.psql(admin_dsn, f"CREATE DATABASE {quote_ident(name)} TEMPLATE template0;")
            created = True
        if conn.psql(admin_dsn, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user;"
                     ) == ["t"]:
            log.warning(
                "restore-db into %r connects as a superuser: the dump's SQL runs with every "
                "right on the server (COPY ... FROM PROGRAM, other databases); restore a dump "
                "you do not trust as the database's owner role, not a superuser", name,
                extra={"event": "restore_privileged"})
        argv = pg_restore_argv(conn.tool("pg_restore"), source, target_dsn, clean=clean,
                               extra=extra_args, use_list=use_list)
        feed_tool(argv, conn.child_env(), feed, what=f"pg_restore into {name!r}")
        return PgRestoreResult(name, created)
    finally:
        conn.cleanup()
