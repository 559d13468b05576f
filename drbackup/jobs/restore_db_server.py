"""restore-db onto a server: the source's own or another (a [[restore_targets]] entry or
--target-host..., the disaster case). Around the source kinds' restore functions it adds what a
DBA expects of a restore onto a fresh server:

- PostgreSQL: the roles the dump names (owners, grantees) are compared with the target's before
  anything changes, and a missing one fails early in one line; the database drbackup creates
  gets the dump's encoding and locale, and after the restore its owner, settings, comment and
  grants (pg_restore applies those only with --create, which cannot take another name);
- a database drbackup created is dropped again when the restore fails; one that existed before
  is never dropped.

The target's password reaches the client tools only through the private PGPASSFILE / defaults
file the source kinds write (drbackup/sources/dumps.py PrivateDir), never argv or state."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from drbackup.config.models import MysqlSource, PostgresSource, RestoreTarget
from drbackup.errors import DbRestoreRefusedError, UsageError
from drbackup.sources import mysql
from drbackup.sources.base import DumpError
from drbackup.sources.dbselect import PartialSelection
from drbackup.sources.dumps import PrivateDir
from drbackup.sources.pgdumpinfo import DumpInfo, read_dump_head, read_dump_info
from drbackup.sources.pgtoc import list_file, parse_listing, select_entries
from drbackup.sources.postgres import (
    FORMAT_SQL,
    PgConnection,
    connect,
    dsn_database,
    dsn_with_database,
    quote_ident,
    quote_literal,
    restore_postgres,
)

log = logging.getLogger(__name__)

Feed = Callable[[IO[bytes]], None]
DROPPED_HINT = "the database {name!r} this restore had created was dropped again"
DbSource = TypeVar("DbSource", PostgresSource, MysqlSource)


@dataclass(frozen=True)
class ServerRestoreResult:
    database: str
    created: bool
    properties: int = 0  # database-level statements applied (owner, settings, comment, grants)


def _kv(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def retarget(source: DbSource, target: RestoreTarget) -> DbSource:
    """The source as if it lived on `target`: its connection settings replaced by the target's
    (host, port, user, password file), everything else (binaries, kind) kept.

    Raises UsageError when the target is of another kind than the source."""
    if target.kind != source.kind:
        raise UsageError(f"restore target {target.name!r} is a {target.kind} server and source "
                         f"{source.id!r} a {source.kind} source",
                         f"name a [[restore_targets]] entry of kind {source.kind!r}")
    if isinstance(source, PostgresSource):
        dsn = (f"host={_kv(target.host)} port={target.server_port} user={_kv(target.user)} "
               "dbname=postgres")
        return source.model_copy(update={
            "dsn": dsn, "password_file": target.password_file, "passfile": None,
            "service_file": None, "all": False})
    socket = Path(target.host) if target.host.startswith("/") else None
    return source.model_copy(update={
        "host": "localhost" if socket else target.host, "port": target.server_port,
        "socket": socket, "user": target.user, "password_file": target.password_file})


def refuse_dsn_with_target(into: str) -> None:
    """With a target server, --into is a database name: a DSN would name a second server."""
    if "://" in into or "=" in into:
        raise UsageError("--into must be a database name when a target server is given",
                         "the server comes from --target / --target-host")


def missing_roles_error(missing: set[str], info: DumpInfo, where: str, *, no_owner: bool,
                        no_privileges: bool) -> DbRestoreRefusedError:
    """One line naming the missing roles and the flags that would do without them."""
    flags = [*(["--no-owner"] if missing & info.owner_roles and not no_owner else []),
             *(["--no-privileges"] if missing & info.privilege_roles and not no_privileges
               else [])]
    return DbRestoreRefusedError(
        f"the dump needs role(s) missing on {where}: {', '.join(sorted(missing))}; "
        f"restore globals first or use {' '.join(flags)}",
        "nothing was changed on the target server")


def refuse_partial_sql(selection: PartialSelection | None) -> None:
    """--schema/--table need an archive's table of contents; a plain SQL dump has none."""
    if selection:
        raise UsageError(
            "a plain SQL dump cannot be restored partially; --schema/--table need a pg_dump "
            "custom, tar or directory archive",
            "restore it whole (without --schema/--table)")


def restore_postgres_onto(source: PostgresSource, into: str, feed: Feed, inspect: Feed, *,
                          dump_format: str, overwrite: bool, clean: bool, no_owner: bool,
                          no_privileges: bool, where: str,
                          selection: PartialSelection | None = None) -> ServerRestoreResult:
    """Restore a pg_dump (custom format) onto the server `source` names; `inspect` streams the
    same dump once more for its table of contents. A globals dump (SQL) is replayed as is.
    With `selection`, only those schemas and tables (drbackup/sources/pgtoc.py), the names
    checked against the dump before anything changes on the server.

    Raises DbRestoreRefusedError (roles missing), NotFoundError (a name the dump does not
    have), UsageError (a plain SQL dump with a selection), TargetRefusedError, DumpError."""
    extra = [*(["--no-owner"] if no_owner else []),
             *(["--no-privileges"] if no_privileges else [])]
    if dump_format == FORMAT_SQL:
        refuse_partial_sql(selection)
        conn = connect(source)
        try:
            me = conn.psql(dsn_with_database(source.dsn, "postgres"), "SELECT current_user;")[0]
        finally:
            conn.cleanup()
        done = restore_postgres(source, into, without_role(feed, me), dump_format=dump_format,
                                overwrite=overwrite, clean=clean)
        return ServerRestoreResult(done.database, done.created)
    conn = connect(source)
    cleanups: list[Callable[[], None]] = []
    try:
        if "://" in into or "=" in into:
            target_dsn, name = into, dsn_database(into) or ""
        else:
            target_dsn, name = dsn_with_database(source.dsn, into), into
        admin = dsn_with_database(target_dsn, "postgres")
        head = _HeadCopy()
        info = read_dump_info(conn.tool("pg_restore"), conn.child_env(),
                              head.recording(inspect) if selection else inspect)
        use_list = None
        if selection:
            listing = read_dump_head([conn.tool("pg_restore"), "--list", "--verbose"],
                                     conn.child_env(), head.replay or inspect)
            chosen = select_entries(parse_listing(listing), selection)
            lists = PrivateDir("drbackup-pglist-")
            cleanups.append(lists.cleanup)
            use_list = str(lists.write_secret("toc.list", list_file(chosen)))
        present = set(conn.psql(admin, "SELECT rolname FROM pg_roles;"))
        missing = set(info.needed_roles(no_owner=no_owner, no_privileges=no_privileges)
                      ) - present
        if missing:
            raise missing_roles_error(missing, info, where, no_owner=no_owner,
                                      no_privileges=no_privileges)
        created = False
        if name and not conn.psql(admin, "SELECT 1 FROM pg_database WHERE datname = "  # noqa: S608
                                  f"{quote_literal(name)};"):
            options = f" WITH {info.create_options}" if info.create_options else (
                " TEMPLATE template0")
            conn.psql(admin, f"CREATE DATABASE {quote_ident(name)}{options};")
            created = True
        try:
            done = restore_postgres(source, into, feed, dump_format=dump_format,
                                    overwrite=overwrite, clean=clean, extra_args=extra,
                                    use_list=use_list)
            applied = 0
            if created:
                skip = ({"owner", "role-setting"} if no_owner else set()) | (
                    {"privilege"} if no_privileges else set())
                statements = [s.for_database(quote_ident(name))
                              for s in info.database_statements if s.group not in skip]
                if statements:
                    conn.psql(admin, "\n".join(statements) + "\n")
                applied = len(statements)
        except BaseException as exc:
            if created and _drop_pg(conn, admin, name) and isinstance(exc, DumpError):
                exc.hint = f"{DROPPED_HINT.format(name=name)}; {exc.hint}"
            raise
        return ServerRestoreResult(done.database, created or done.created, applied)
    finally:
        conn.cleanup()
        for cleanup in cleanups:
            cleanup()


class _HeadCopy:
    """The bytes of a dump pg_restore read for its table of contents (and a little more), kept
    in memory up to LIMIT so a second look at the table of contents (the partial restore's
    listing) needs no second `restic dump`; a larger head is streamed again."""

    LIMIT = 64 << 20

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        self._sink: IO[bytes] | None = None
        self.replay: Feed | None = None

    def write(self, data: bytes) -> int:
        if self._size <= self.LIMIT:
            self._chunks.append(bytes(data))
            self._size += len(data)
        assert self._sink is not None
        return self._sink.write(data)

    def flush(self) -> None:
        assert self._sink is not None
        self._sink.flush()

    def _write_copy(self, out: IO[bytes]) -> None:
        out.write(b"".join(self._chunks))

    def recording(self, inspect: Feed) -> Feed:
        def recorded(sink: IO[bytes]) -> None:
            self._sink = sink
            try:
                inspect(self)  # type: ignore[arg-type]  # write/flush is all a feed uses
            finally:
                self._sink = None
                if self._size <= self.LIMIT:
                    self.replay = self._write_copy
        return recorded


class _RoleLinesDropped:
    """A sink dropping the globals dump's `CREATE ROLE me;` / `ALTER ROLE me ...` lines (one
    line each in pg_dumpall's output): replayed, they would give the role drbackup restores as
    the source server's password and attributes, and lock the rest of the restore out."""

    def __init__(self, sink: IO[bytes], role: str) -> None:
        self._sink = sink
        names = {quote_ident(role).encode(), *([role.encode()] if role.isidentifier() else [])}
        self._prefixes = tuple(f"{verb} ROLE ".encode() + name + end for verb in ("CREATE", "ALTER")
                               for name in names for end in (b" ", b";"))
        self._pending = b""
        self.dropped = 0

    def write(self, data: bytes) -> int:
        lines = (self._pending + bytes(data)).split(b"\n")
        self._pending = lines.pop()
        for line in lines:
            if line.startswith(self._prefixes):
                self.dropped += 1
                continue
            self._sink.write(line + b"\n")
        return len(data)

    def flush(self) -> None:
        self._sink.flush()

    def finish(self) -> None:
        if self._pending and not self._pending.startswith(self._prefixes):
            self._sink.write(self._pending)
        self._pending = b""


def without_role(feed: Feed, role: str) -> Feed:
    def filtered(sink: IO[bytes]) -> None:
        stream = _RoleLinesDropped(sink, role)
        feed(stream)  # type: ignore[arg-type]  # write/flush is all a feed uses
        stream.finish()
        if stream.dropped:
            log.warning("the globals dump's %d statement(s) changing role %r, the one this "
                        "restore connects as, were left out", stream.dropped, role,
                        extra={"event": "restore_globals_own_role_kept"})
    return filtered


def _drop_pg(conn: PgConnection, admin: str, name: str) -> bool:
    """Drop the database this restore created; False (logged) when that failed too: the
    restore's own error is the one reported."""
    try:
        conn.psql(admin, f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE);")
    except DumpError as exc:
        log.error("the database %r created by the failed restore could not be dropped: %s",
                  name, exc.message, extra={"event": "restore_cleanup_failed"})
        return False
    return True


def restore_mysql_onto(source: MysqlSource, into: str, feed: Feed, *, overwrite: bool,
                       clean: bool, charset: mysql.DatabaseCharset | None = None,
                       after_replay: Callable[[], None] | None = None
                       ) -> ServerRestoreResult:
    """Replay a MariaDB/MySQL dump onto the server `source` names, a database it creates made
    with the dump's recorded `charset`; a database that did not exist before is dropped again
    when the replay fails, or `after_replay` (a check of a partial restore) raises.

    Raises TargetRefusedError, DumpError."""
    conn = mysql.connect(source)
    try:
        existed = bool(conn.query("SELECT 1 FROM information_schema.schemata WHERE "  # noqa: S608
                                  f"schema_name = {mysql.quote_literal(into)};"))
        try:
            done = mysql.restore_mysql(source, into, feed, overwrite=overwrite, clean=clean,
                                       charset=charset, extra_args=source.restore_args)
            if after_replay is not None:
                after_replay()
        except BaseException as exc:
            if not existed:
                try:
                    conn.query(f"DROP DATABASE IF EXISTS {mysql.quote_ident(into)};")
                except DumpError as failed:
                    log.error("the database %r created by the failed restore could not be "
                              "dropped: %s", into, failed.message,
                              extra={"event": "restore_cleanup_failed"})
                else:
                    if isinstance(exc, DumpError):
                        exc.hint = f"{DROPPED_HINT.format(name=into)}; {exc.hint}"
            raise
        return ServerRestoreResult(done.database, done.created)
    finally:
        conn.cleanup()
