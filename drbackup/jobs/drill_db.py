"""Database restore drills: restore the latest dump into a throwaway database on the same server,
check it, drop it.

- postgres sources: the latest snapshot of each database the source dumps, restored with
  pg_restore into `drbackup_drill_<run>_<n>_<random>` on the source's own server (the source's user
  needs CREATEDB);
- dumpdir sources with `drill_postgres_dsn`: the newest dump file of the latest snapshot
  (pg_dump custom format, recognised by its PGDMP header, or plain SQL), restored into a
  throwaway database on that server;
- sqlite sources: the copy restored into the drill's scratch directory.

With `drill_target = "local-instance"` (postgres, mysql, dumpdir sources) the dumps are restored
instead into a throwaway server started for the drill (`drbackup/verify/instance.py`) in its own
scratch directory `drill-<run>-db`, reachable only through a unix socket there; the source's
server is not contacted at all. The checks are the same; the server is stopped and its
directory removed afterwards (a killed drill's server at the next start).

Checks: every table the dump declares is present (pg_restore --list / CREATE TABLE statements),
row counts per table (reported), and the source's `assert` SQL statements, each of which must
return true. A dump that cannot be restored (truncated, damaged) fails the drill with the tool's
own words. The scratch database is dropped in a `finally`; one left by a killed drill is
dropped at the next start (`clean_stale_databases`, run by `clean_stale_scratch`).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from drbackup.config.models import (
    LOCAL_INSTANCE,
    AgencyConfig,
    DumpdirSource,
    MysqlSource,
    PostgresSource,
    SqliteSource,
)
from drbackup.engine import Snapshot
from drbackup.errors import DrBackupError
from drbackup.jobs.drill import (
    DRILLS,
    STALE_CLEANERS,
    DrillOutcome,
    DrillRecord,
    RestoreTiming,
    drill_run,
)
from drbackup.jobs.runtime import Runtime
from drbackup.jobs.snapshot_catalogue import repository_snapshots
from drbackup.jobs.tags import source_filter, tag_id
from drbackup.sources import mysql as my
from drbackup.sources.base import DumpError
from drbackup.sources.dumps import CountingSink, run_tool
from drbackup.sources.postgres import (
    GLOBALS,
    PgConnection,
    connect,
    dsn_with_database,
    quote_ident,
    quote_literal,
    restore_postgres,
)
from drbackup.sources.sqlreplay import replay_sql
from drbackup.verify.instance import (
    PG_RESTORE_ROLE,
    PG_SUPERUSER,
    LocalInstance,
    mariadb_instance,
    mariadb_programs,
    postgres_bin_dir,
    postgres_dsn,
    postgres_instance,
    postgres_run_as,
)
from drbackup.verify.scratch import scratch_space

log = logging.getLogger(__name__)
PENDING_DIR = "scratch-db"
_TOC_TABLE = re.compile(r"^\d+;\s+\d+\s+\d+\s+TABLE\s+(?!DATA\s)(\S+)\s+(\S+)\s")
_SQL_TABLE = re.compile(r"^CREATE TABLE (?:IF NOT EXISTS )?([^\s(]+)", re.MULTILINE)
_SQL_ROLE = re.compile(
    r'^(?:ALTER .* OWNER TO|GRANT .* TO|REVOKE .* FROM) ("(?:[^"]|"")+"|\w+);$')
# A local instance lacks the source server's roles: objects belong to the restore role.
_PG_INSTANCE_RESTORE_ARGS = ("--no-owner", "--no-privileges")
DbSource = PostgresSource | MysqlSource | SqliteSource | DumpdirSource
_TRUE = {"t", "true", "1", "yes", "on"}


@dataclass(frozen=True)
class TableCount:
    table: str
    rows: int


# -- the throwaway database ------------------------------------------------------------------


def _pg_source_for(source: PostgresSource | DumpdirSource) -> PostgresSource:
    if isinstance(source, PostgresSource):
        return source
    assert source.drill_postgres_dsn is not None
    return PostgresSource.model_validate({
        "id": source.id, "kind": "postgres", "dsn": source.drill_postgres_dsn,
        "password_file": source.drill_password_file})


def scratch_database_name(run_id: int, index: int) -> str:
    """Unique across hosts and state directories sharing a database server: run ids are not."""
    return f"drbackup_drill_{run_id}_{index}_{secrets.token_hex(4)}"


@contextmanager
def _pending_database(rt: Runtime, agency: AgencyConfig, source_id: str, name: str,
                      admin_dsn: str) -> Iterator[None]:
    """Note the scratch database under <state_dir>/scratch-db/ (locked while this drill lives)
    so a killed drill's database is found and dropped at the next start."""
    directory = rt.config.daemon.state_dir / PENDING_DIR
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"{name}.json"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, json.dumps({"agency": agency.id, "source": source_id, "database": name,
                                 "admin_dsn": admin_dsn}).encode())
        yield
        path.unlink(missing_ok=True)
    finally:
        os.close(fd)


def _drop(conn: PgConnection, admin_dsn: str, name: str) -> None:
    conn.psql(admin_dsn, f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE);")


def clean_stale_databases(rt: Runtime) -> list[str]:
    """Drop scratch databases of drills that were killed; returns their names."""
    directory = rt.config.daemon.state_dir / PENDING_DIR
    if not directory.is_dir():
        return []
    dropped: list[str] = []
    for path in sorted(directory.glob("*.json")):
        fd = os.open(path, os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its drill is still running
            try:
                note = json.loads(path.read_text())
                source = rt.config.agency(str(note["agency"])).source(str(note["source"]))
            except (ValueError, KeyError, DrBackupError):
                path.unlink(missing_ok=True)
                continue
            if isinstance(source, MysqlSource):
                my_conn = my.connect(source)
                try:
                    my_conn.query(f"DROP DATABASE IF EXISTS {my.quote_ident(note['database'])};")
                    my.drop_replay_user(my_conn, str(note["database"]))
                finally:
                    my_conn.cleanup()
            elif isinstance(source, PostgresSource) or (
                    isinstance(source, DumpdirSource) and source.drill_postgres_dsn is not None):
                conn = connect(_pg_source_for(source))
                try:
                    _drop(conn, str(note["admin_dsn"]), str(note["database"]))
                finally:
                    conn.cleanup()
            path.unlink(missing_ok=True)
            dropped.append(str(note["database"]))
            log.warning("dropped leftover drill database %s", note["database"])
        finally:
            os.close(fd)
    return dropped


def _clean_stale(rt: Runtime) -> None:
    clean_stale_databases(rt)


STALE_CLEANERS.append(_clean_stale)


# -- checks ----------------------------------------------------------------------------------


def toc_tables(conn: PgConnection, dump: Path) -> list[str]:
    """Tables a custom-format dump declares (pg_restore --list). Raises DumpError when the dump
    cannot even be listed."""
    result = run_tool([conn.tool("pg_restore"), "--list", str(dump)], conn.child_env())
    if result.returncode != 0:
        raise DumpError(f"pg_restore cannot read the dump: {_last(result.stderr_tail)}",
                        "the dump is damaged; take a new one")
    tables = []
    for line in result.stdout.splitlines():
        match = _TOC_TABLE.match(line)
        if match:
            tables.append(f"{match.group(1)}.{match.group(2)}")
    return sorted(set(tables))


def sql_tables(dump: Path, default_schema: str = "public") -> list[str]:
    """Tables a plain SQL dump creates, as schema.table."""
    names: set[str] = set()
    with dump.open("r", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            match = _SQL_TABLE.match(line)
            if match:
                name = match.group(1).replace('"', "").replace("`", "")
                names.add(name if "." in name else f"{default_schema}.{name}")
    return sorted(names)


def _last(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no error text"


def pg_table_counts(conn: PgConnection, dsn: str) -> list[TableCount]:
    tables = conn.psql(dsn, (
        "SELECT n.nspname || '.' || c.relname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1;"))
    if not tables:
        return []
    parts = []
    for table in tables:
        schema, _, name = table.partition(".")
        parts.append(f"SELECT {quote_literal(table)}, count(*) FROM "  # noqa: S608
                     f"{quote_ident(schema)}.{quote_ident(name)}")
    rows = conn.psql(dsn, " UNION ALL ".join(parts) + ";")
    counts = []
    for row in rows:
        table, _, value = row.rpartition("|")
        counts.append(TableCount(table, int(value)))
    return counts


def _assertion_true(rows: list[str]) -> bool:
    return len(rows) == 1 and rows[0].strip().lower() in _TRUE


def _dump_does_not_restore(exc: DumpError, label: str, entry: dict[str, Any],
                           record: DrillRecord) -> None:
    """The restore tool rejected the dump: the backup itself is bad (truncated, damaged), or
    the dump comes from a newer PostgreSQL than this host's pg_restore reads."""
    if isinstance(exc, RefusedDumpError):
        record.fail(f"{label}: {exc.message} ({exc.hint})")
    elif "unsupported version" in exc.stderr_tail:
        # pg_restore: error: unsupported version (1.16) in file header -- not the dump's fault.
        record.fail(f"{label}: this host's pg_restore cannot read the dump: {exc.message} (the "
                    "dump comes from a newer PostgreSQL: install that version's client here, "
                    "or point the source's bin_dir at it)")
    else:
        record.fail(f"{label}: the dump does not restore: {exc.message} (a truncated or "
                    "damaged dump)")
    entry["verdict"] = "fail"
    entry["error_tail"] = exc.stderr_tail[-2000:]


def _run_assertions(statements: list[str], query: Callable[[str], list[str]], label: str,
                    record: DrillRecord) -> tuple[list[dict[str, Any]], bool]:
    """Run each configured SQL assertion through `query` (which raises DumpError or
    sqlite3.Error on a bad statement); returns the results and whether all held."""
    results: list[dict[str, Any]] = []
    held = True
    for statement in statements:
        try:
            rows = query(statement.rstrip().rstrip(";"))
        except DumpError as exc:
            ok, shown = False, f"error: {exc.message}"
        except sqlite3.Error as exc:
            ok, shown = False, f"error: {exc}"
        else:
            ok, shown = _assertion_true(rows), "|".join(rows)
        results.append({"sql": statement, "result": shown, "ok": ok})
        if not ok:
            held = False
            record.fail(f"{label}: assertion failed: {statement} returned {shown or 'nothing'}")
    return results, held


# -- the drill -------------------------------------------------------------------------------


def _latest_per_database(snapshots: list[Snapshot]) -> list[Snapshot]:
    latest: dict[str, Snapshot] = {}
    for snapshot in sorted(snapshots, key=lambda s: s.time):
        database = tag_id(snapshot, "database") or ""
        if database == GLOBALS:
            continue
        latest[database] = snapshot
    return [latest[k] for k in sorted(latest)]




def run_db_drill(rt: Runtime, agency: AgencyConfig, source: DbSource, *,
                 trigger: str = "cli") -> DrillOutcome:
    """Restore-drill a database source (see the module doc). A dump that does not restore or
    fails a check gives verdict "fail"; unreachable stores raise their DrBackupError."""
    box: list[DrillOutcome] = []
    rt.restic.require_supported()
    rt.check_store(agency.store)
    with drill_run(rt, agency, source, "db", trigger, box) as record:
        _db_drill_body(rt, agency, source, record)
    return box[0]


def drill_target(source: DbSource) -> str:
    """Where the source's dumps are restored: "same-server", "local-instance", or
    "scratch-file" (a SQLite copy)."""
    if isinstance(source, SqliteSource):
        return "scratch-file"
    return source.drill_target


def preflight_local_instance(source: DbSource, state_dir: Path) -> None:
    """Fail early, before any download, when the local instance cannot be started here:
    server package missing, or root with nobody to run PostgreSQL as (ConfigError)."""
    if drill_target(source) != LOCAL_INSTANCE:
        return
    if isinstance(source, MysqlSource):
        mariadb_programs()
    else:
        postgres_bin_dir()
        postgres_run_as(state_dir)


@contextmanager
def _restore_server(rt: Runtime, source: DbSource, run_id: int,
                    record: DrillRecord) -> Iterator[LocalInstance | None]:
    """The local instance the dumps go into (stopped and removed on exit), or None: the
    source's own server."""
    if drill_target(source) != LOCAL_INSTANCE:
        yield None
        return
    state_dir = rt.config.daemon.state_dir
    with scratch_space(state_dir, f"drill-{run_id}-db") as directory:
        server: AbstractContextManager[LocalInstance] = (
            mariadb_instance(directory) if isinstance(source, MysqlSource)
            else postgres_instance(directory, state_dir))
        with server as instance:
            record.report["drill_instance"] = instance.describe()
            log.info("drill instance %s %s started in %.1fs", instance.engine,
                     instance.version, instance.start_seconds)
            yield instance


def _db_drill_body(rt: Runtime, agency: AgencyConfig, source: DbSource,
                   record: DrillRecord) -> None:
    target = drill_target(source)
    record.report["drill_target"] = target
    record.details["drill_target"] = target
    if isinstance(source, DumpdirSource) and not source.has_db_drill:
        record.fail(f"dumpdir source {source.id!r} has no drill_postgres_dsn: nothing to "
                    "restore its dumps into")
        return
    preflight_local_instance(source, rt.config.daemon.state_dir)
    repo = rt.target(agency)
    snapshots = repository_snapshots(rt, agency, agency.store,
                                     tags=source_filter(agency.id, source.id))
    if isinstance(source, DumpdirSource):
        chosen = snapshots[-1:] if snapshots else []
    elif isinstance(source, PostgresSource | MysqlSource):
        chosen = _latest_per_database(snapshots)
    else:
        chosen = snapshots[-1:]
    if not chosen:
        record.fail(f"source {source.id!r} has no snapshot to restore")
        return
    record.snapshot = chosen[-1]
    run_id = int(record.details["run_id"])
    databases: list[dict[str, Any]] = []
    total_bytes = 0
    total_seconds = 0.0
    with scratch_space(rt.config.daemon.state_dir, f"drill-{run_id}") as scratch, \
            _restore_server(rt, source, run_id, record) as instance:
        for index, snapshot in enumerate(chosen):
            path = _dump_path(rt, repo, snapshot, source)
            dump_file = scratch / f"dump-{index}"
            started = time.monotonic()
            with dump_file.open("wb") as handle:
                counter = CountingSink(handle)
                rt.restic.dump(repo, snapshot.id, path, counter)  # type: ignore[arg-type]
            entry: dict[str, Any] = {"snapshot_id": snapshot.id, "dump": path,
                                     "database": tag_id(snapshot, "database"),
                                     "bytes": counter.count, "drill_target": target}
            if isinstance(source, SqliteSource):
                seconds_restore = _drill_sqlite(source, dump_file, scratch, entry, record)
            elif isinstance(source, MysqlSource):
                seconds_restore = _drill_mysql(rt, agency, source, dump_file, run_id, index,
                                               entry, record, instance)
            else:
                seconds_restore = _drill_postgres(rt, agency, source, dump_file, run_id, index,
                                                  entry, record, instance)
            total_bytes += counter.count
            total_seconds += time.monotonic() - started
            entry["seconds"] = round(seconds_restore, 3)
            databases.append(entry)
    record.timing = RestoreTiming(total_bytes, total_seconds, total_bytes,
                                  agency.rto.total_seconds())
    record.report["databases"] = databases
    record.report["tables"] = [t for d in databases for t in d.get("tables", [])]
    record.details["databases"] = [
        {k: v for k, v in d.items() if k in ("database", "snapshot_id", "verdict")}
        for d in databases]
    if "drill_instance" in record.report:
        record.details["drill_instance"] = {
            k: v for k, v in record.report["drill_instance"].items()
            if k in ("engine", "version", "start_seconds")}


def _dump_path(rt: Runtime, repo: Any, snapshot: Snapshot, source: DbSource) -> str:
    if not isinstance(source, DumpdirSource):
        return snapshot.paths[0]
    files = [n for n in rt.restic.ls(repo, snapshot.id) if n.type == "file"]
    if not files:
        raise DumpError(f"snapshot {snapshot.short_id} of {source.id!r} holds no file",
                        "check the drop folder's pattern")
    return max(files, key=lambda n: (n.mtime.timestamp() if n.mtime else 0, n.path)).path


def _instance_pg_source(source: PostgresSource | DumpdirSource, instance: LocalInstance,
                        user: str) -> PostgresSource:
    """The drill's local instance as a PostgresSource: its socket, no password of any kind."""
    return PostgresSource.model_validate({
        "id": source.id, "kind": "postgres", "dsn": postgres_dsn(instance, user=user),
        "bin_dir": str(instance.bin_dir)})


def sql_roles(dump: Path) -> list[str]:
    """Roles a plain SQL dump gives objects or privileges to (ALTER ... OWNER TO, GRANT ...
    TO, REVOKE ... FROM), as bare names; PUBLIC excluded."""
    names: set[str] = set()
    with dump.open("r", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            match = _SQL_ROLE.match(line.rstrip("\n"))
            if match:
                raw = match.group(1)
                name = raw[1:-1].replace('""', '"') if raw.startswith('"') else raw.lower()
                if name.lower() != "public":
                    names.add(name)
    return sorted(names)


class RefusedDumpError(DumpError):
    """A dump the drill will not replay because of what it asks for (not because it is
    damaged): the drill fails with this reason."""


# Built-in roles a dump may name without being granted anything: the owner of a database
# (PostgreSQL 15's default owner of schema public) is a member of it implicitly.
_IMPLICIT_ROLES = {"pg_database_owner"}


def privileged_roles(roles: list[str], existing: set[str]) -> list[str]:
    """The roles of a dump that a drill must never grant: every role the instance already has
    (its superuser, the built-in pg_* roles such as pg_execute_server_program, which runs shell
    commands through COPY ... FROM PROGRAM, or pg_read_server_files) and any pg_* name."""
    return sorted(role for role in roles
                  if role not in _IMPLICIT_ROLES and role != PG_RESTORE_ROLE
                  and (role in existing or role.startswith("pg_")))


def _prepare_instance_database(admin: PgConnection, admin_dsn: str, name: str,
                               roles: list[str]) -> None:
    """As the instance's superuser: the scratch database, owned by the unprivileged restore
    role, and the roles a plain dump hands objects to -- each created here as a NOLOGIN role
    with no attribute, granted to the restore role, allowed to own objects in the database.
    The restore itself never runs as superuser, and no role that exists before (built-in or
    the superuser) is ever granted: a dump naming one is refused (DumpError)."""
    existing = set(admin.psql(admin_dsn, "SELECT rolname FROM pg_roles;"))
    refused = privileged_roles(roles, existing)
    if refused:
        shown = ", ".join(refused[:5]) + (f" and {len(refused) - 5} more" if len(refused) > 5
                                          else "")
        raise RefusedDumpError(
            f"the dump gives objects or privileges to privileged or built-in roles ({shown}), "
            "which a drill never grants: not replayed",
            "dump without ownership and privileges (pg_dump --no-owner --no-privileges), or "
            "use the custom format, which the drill restores with --no-owner --no-privileges")
    admin.psql(admin_dsn, f"CREATE DATABASE {quote_ident(name)} OWNER "
                          f"{quote_ident(PG_RESTORE_ROLE)} TEMPLATE template0;")
    statements = []
    for role in roles:
        if role in _IMPLICIT_ROLES or role == PG_RESTORE_ROLE:
            continue
        statements.append(f"CREATE ROLE {quote_ident(role)} NOLOGIN NOSUPERUSER NOCREATEDB "
                          "NOCREATEROLE NOREPLICATION NOBYPASSRLS;")
        statements.append(f"GRANT {quote_ident(role)} TO {quote_ident(PG_RESTORE_ROLE)};")
        statements.append(f"GRANT CREATE ON DATABASE {quote_ident(name)} TO "
                          f"{quote_ident(role)};")
        statements.append(f"GRANT CREATE ON SCHEMA public TO {quote_ident(role)};")
    if statements:
        admin.psql(dsn_with_database(admin_dsn, name), "\n".join(statements))


def _drill_postgres(rt: Runtime, agency: AgencyConfig, source: PostgresSource | DumpdirSource,
                    dump: Path, run_id: int, index: int, entry: dict[str, Any],
                    record: DrillRecord, instance: LocalInstance | None = None) -> float:
    if instance is None:
        pg_source = admin_source = _pg_source_for(source)
    else:
        pg_source = _instance_pg_source(source, instance, PG_RESTORE_ROLE)
        admin_source = _instance_pg_source(source, instance, PG_SUPERUSER)
    conn = connect(pg_source)
    admin = conn if instance is None else connect(admin_source)
    name = scratch_database_name(run_id, index)
    admin_dsn = dsn_with_database(admin_source.dsn, "postgres")
    scratch_dsn = dsn_with_database(pg_source.dsn, name)
    entry["scratch_database"] = name
    label = entry["database"] or Path(entry["dump"]).name
    started = time.monotonic()
    try:
        with open(dump, "rb") as probe:
            custom = probe.read(5) == b"PGDMP"
        entry["format"] = "custom" if custom else "sql"
        try:
            expected = toc_tables(conn, dump) if custom else sql_tables(dump)
        except DumpError as exc:
            record.fail(f"{label}: {exc.message}")
            entry["verdict"] = "fail"
            return time.monotonic() - started
        pending: AbstractContextManager[None] = (
            nullcontext() if instance is not None
            else _pending_database(rt, agency, source.id, name, admin_dsn))
        with pending:
            try:
                if instance is not None:
                    _prepare_instance_database(admin, admin_dsn, name,
                                               [] if custom else sql_roles(dump))
                if custom:
                    restore_postgres(pg_source, name, lambda sink: _copy(dump, sink),
                                     extra_args=() if instance is None
                                     else _PG_INSTANCE_RESTORE_ARGS)
                else:
                    if instance is None:
                        conn.psql(admin_dsn, f"CREATE DATABASE {quote_ident(name)} "
                                             "TEMPLATE template0;")
                    replay_sql(conn.tool("psql"), ["-v", "ON_ERROR_STOP=1",
                                                    "--single-transaction", "-d", scratch_dsn],
                               conn.child_env(), lambda sink: _copy(dump, sink),
                               what=f"psql into {name!r}")
                seconds = time.monotonic() - started
                _check_postgres(conn, scratch_dsn, source, expected, label, entry, record)
            except DumpError as exc:
                seconds = time.monotonic() - started
                _dump_does_not_restore(exc, label, entry, record)
            finally:
                try:
                    _drop(admin, admin_dsn, name)
                except DumpError as exc:
                    record.findings.append(f"scratch database {name} not dropped: "
                                           f"{exc.message}")
        return seconds
    finally:
        conn.cleanup()
        if admin is not conn:
            admin.cleanup()


def _copy(path: Path, sink: IO[bytes]) -> None:
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sink.write(block)


def _check_postgres(conn: PgConnection, dsn: str, source: PostgresSource | DumpdirSource,
                    expected: list[str], label: str, entry: dict[str, Any],
                    record: DrillRecord) -> None:
    counts = pg_table_counts(conn, dsn)
    present = {c.table for c in counts}
    missing = [t for t in expected if t not in present]
    entry["tables"] = [{"table": c.table, "rows": c.rows} for c in counts]
    entry["expected_tables"] = expected
    entry["empty_tables"] = [c.table for c in counts if c.rows == 0]
    failed = False
    if missing:
        failed = True
        record.fail(f"{label}: tables missing after restore: {', '.join(missing[:10])}")
    results, held = _run_assertions(list(source.assertions),
                                    lambda sql: conn.psql(dsn, sql + ";"), label, record)
    entry["assertions"] = results
    entry["verdict"] = "fail" if failed or not held else "pass"


def _instance_my_source(source: MysqlSource, instance: LocalInstance) -> MysqlSource:
    """The drill's local instance as a MysqlSource: its socket, root without a password."""
    return MysqlSource.model_validate({
        "id": source.id, "kind": "mysql", "database": source.database,
        "socket": str(instance.socket), "user": "root",
        "client_binary": source.client_binary})


def _drill_mysql(rt: Runtime, agency: AgencyConfig, source: MysqlSource, dump: Path,
                 run_id: int, index: int, entry: dict[str, Any], record: DrillRecord,
                 instance: LocalInstance | None = None) -> float:
    """Restore and check one dump as a user whose rights end at the scratch database (see
    my.create_replay_user); on the source's server, when its user may not create one, as that
    user (the client still cannot read this host's files: mysqlreplay)."""
    server = source if instance is None else _instance_my_source(source, instance)
    name = scratch_database_name(run_id, index)
    entry["scratch_database"] = name
    entry["format"] = "sql"
    label = entry["database"] or source.database
    expected = [t.split(".", 1)[1] for t in sql_tables(dump, "_")]
    started = time.monotonic()
    admin = my.connect(server)
    pending: AbstractContextManager[None] = (
        nullcontext() if instance is not None
        else _pending_database(rt, agency, source.id, name, ""))
    checker: my.MyConnection | None = None
    try:
        with pending:
            try:
                replay = _replay_user(admin, name, entry, instance)
                my.restore_mysql(server, name, lambda sink: _copy(dump, sink),
                                 replay_as=replay)
                checker = admin if replay is None else my.connect(replay)
                conn = checker
                seconds = time.monotonic() - started
                literal = my.quote_literal(name)
                listing = ("SELECT table_name FROM information_schema.tables WHERE "  # noqa: S608
                           f"table_schema = {literal} AND table_type = 'BASE TABLE' "
                           "ORDER BY table_name;")
                tables = conn.query(listing)
                counts: list[dict[str, Any]] = []
                if tables:
                    selects = [f"SELECT {my.quote_literal(t)}, COUNT(*) FROM "  # noqa: S608
                               f"{my.quote_ident(name)}.{my.quote_ident(t)}" for t in tables]
                    rows = conn.query(" UNION ALL ".join(selects) + ";")
                    for row in rows:
                        table, _, value = row.rpartition("\t")
                        counts.append({"table": table, "rows": int(value)})
                entry["tables"] = counts
                entry["expected_tables"] = sorted(expected)
                missing = sorted(set(expected) - set(tables))
                failed = bool(missing)
                if missing:
                    record.fail(f"{label}: tables missing after restore: "
                                f"{', '.join(missing[:10])}")
                results, held = _run_assertions(
                    list(source.assertions),
                    lambda sql: conn.query(f"USE {my.quote_ident(name)};\n{sql};"),
                    label, record)
                entry["assertions"] = results
                entry["verdict"] = "fail" if failed or not held else "pass"
            except DumpError as exc:
                seconds = time.monotonic() - started
                _dump_does_not_restore(exc, label, entry, record)
            finally:
                try:
                    admin.query(f"DROP DATABASE IF EXISTS {my.quote_ident(name)};")
                except DumpError as exc:
                    record.findings.append(f"scratch database {name} not dropped: "
                                           f"{exc.message}")
                my.drop_replay_user(admin, name)
        return seconds
    finally:
        if checker is not None and checker is not admin:
            checker.cleanup()
        admin.cleanup()


def _replay_user(admin: my.MyConnection, name: str, entry: dict[str, Any],
                 instance: LocalInstance | None) -> MysqlSource | None:
    """The scratch database's own user, or None (the source's user) when the source's server
    does not let its user create one. In a local instance its root always can."""
    try:
        replay = my.create_replay_user(admin, name)
    except DumpError as exc:
        if instance is not None:
            raise
        log.warning("drill of %s replays as the source's user: it may not create a user "
                    "limited to the scratch database (%s)", name, exc.message)
        entry["replay_user"] = "source user"
        return None
    entry["replay_user"] = "scratch database only"
    return replay


def _drill_sqlite(source: SqliteSource, dump: Path, scratch: Path, entry: dict[str, Any],
                  record: DrillRecord) -> float:
    started = time.monotonic()
    copy = scratch / "restored.sqlite"
    os.replace(dump, copy)
    label = Path(entry["dump"]).name
    try:
        with sqlite3.connect(f"file:{copy}?mode=ro", uri=True) as db:
            integrity = [row[0] for row in db.execute("PRAGMA integrity_check")]
            if integrity != ["ok"]:
                raise sqlite3.DatabaseError("; ".join(str(i) for i in integrity[:5]))
            tables = [str(row[0]) for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
            counts = []
            for table in tables:
                quoted = '"' + table.replace('"', '""') + '"'
                counts.append({"table": table, "rows": int(db.execute(
                    f"SELECT count(*) FROM {quoted}").fetchone()[0])})  # noqa: S608
            entry["tables"] = counts
            results, held = _run_assertions(
                list(source.assertions),
                lambda sql: [str(v) for row in db.execute(sql) for v in row], label, record)
            entry["assertions"] = results
            entry["verdict"] = "pass" if held else "fail"
    except sqlite3.DatabaseError as exc:
        record.fail(f"{label}: the restored SQLite file is damaged: {exc}")
        entry["verdict"] = "fail"
    finally:
        with suppress(OSError):
            copy.unlink()
    return time.monotonic() - started


def _database_drill(rt: Runtime, agency: AgencyConfig, source: Any, trigger: str
                    ) -> DrillOutcome:
    return run_db_drill(rt, agency, source, trigger=trigger)


DRILLS["postgres"] = ("db", _database_drill)
DRILLS["mysql"] = ("db", _database_drill)
DRILLS["sqlite"] = ("db", _database_drill)
DRILLS["dumpdir"] = ("db", _database_drill)
