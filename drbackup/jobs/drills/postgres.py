"""PostgreSQL drills: postgres sources, and dumpdir sources with `drill_postgres_dsn` or
`drill_target = "local-instance"` (see database.py for the drill around the dumps).

- postgres sources: the latest snapshot of each database the source dumps, restored with
  pg_restore into `drbackup_drill_<run>_<n>_<random>` on the source's own server (the source's user
  needs CREATEDB);
- dumpdir sources with `drill_postgres_dsn`: the newest dump file of the latest snapshot, its
  format told from its content (custom, tar, directory, plain SQL, or gzip of one:
  drbackup/sources/dumpformat.py), restored into a throwaway database on that server with
  pg_restore (custom, tar, directory) or psql (plain); any other content fails the drill as an
  "unsupported format", which is not a damaged dump.
With `drill_target = "local-instance"` the dumps go into a throwaway PostgreSQL started for the
drill instead; the restore never runs as its superuser, and a plain dump naming privileged or
built-in roles is refused.

Checks: every table the dump declares is present (pg_restore --list / CREATE TABLE statements),
row counts per table, and the source's assertions. The scratch database is dropped in a
`finally`; one left by a killed drill is dropped at the next start (`drop_scratch_database`, in
the table of drbackup/jobs/drills/__init__.py).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from drbackup.config.models import AgencyConfig, DumpdirSource, PostgresSource, Source
from drbackup.jobs.drills.common import (
    DrillOutcome,
    DrillRecord,
    Fields,
    pending_database,
    scratch_database_name,
)
from drbackup.jobs.drills.database import (
    DumpJob,
    RefusedDumpError,
    copy_dump,
    dump_does_not_restore,
    run_assertions,
    run_db_drill,
    sql_tables,
)
from drbackup.jobs.runtime import Runtime
from drbackup.sources.base import DumpError
from drbackup.sources.dumpformat import (
    PG_RESTORE_FORMAT,
    PLAIN,
    PreparedDump,
    UnsupportedFormatError,
    prepare,
)
from drbackup.sources.dumps import run_tool
from drbackup.sources.postgres import (
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
    postgres_dsn,
)

_TOC_TABLE = re.compile(r"^\d+;\s+\d+\s+\d+\s+TABLE\s+(?!DATA\s)(\S+)\s+(\S+)\s")
_SQL_ROLE = re.compile(
    r'^(?:ALTER .* OWNER TO|GRANT .* TO|REVOKE .* FROM) ("(?:[^"]|"")+"|\w+);$')
# A local instance lacks the source server's roles: objects belong to the restore role.
_PG_INSTANCE_RESTORE_ARGS = ("--no-owner", "--no-privileges")
PgDrillSource = PostgresSource | DumpdirSource


@dataclass(frozen=True)
class TableCount:
    table: str
    rows: int


def drill_postgres(rt: Runtime, agency: AgencyConfig, source: Source, trigger: str
                   ) -> DrillOutcome:
    """The table's entry for postgres and dumpdir sources (common.DrillFunction)."""
    if not isinstance(source, PostgresSource | DumpdirSource):
        raise TypeError(f"a PostgreSQL drill needs a postgres or dumpdir source, not "
                        f"{source.kind!r}")
    return run_db_drill(rt, agency, source, restore_dump, trigger=trigger)


# -- the throwaway database ------------------------------------------------------------------


def _pg_source_for(source: PgDrillSource) -> PostgresSource:
    if isinstance(source, PostgresSource):
        return source
    assert source.drill_postgres_dsn is not None
    return PostgresSource.model_validate({
        "id": source.id, "kind": "postgres", "dsn": source.drill_postgres_dsn,
        "password_file": source.drill_password_file})


def _drop(conn: PgConnection, admin_dsn: str, name: str) -> None:
    conn.psql(admin_dsn, f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE);")


def drop_scratch_database(source: Source, note: Mapping[str, object]) -> None:
    """Drop the scratch database a killed drill of `source` left (common.ScratchDropper)."""
    if isinstance(source, PostgresSource) or (
            isinstance(source, DumpdirSource) and source.drill_postgres_dsn is not None):
        conn = connect(_pg_source_for(source))
        try:
            _drop(conn, str(note["admin_dsn"]), str(note["database"]))
        finally:
            conn.cleanup()


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


# -- local instance --------------------------------------------------------------------------


def _instance_pg_source(source: PgDrillSource, instance: LocalInstance,
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


# -- the drill of one dump -------------------------------------------------------------------


def restore_dump(job: DumpJob[PgDrillSource]) -> float:
    """Restore one dump into a scratch database and check it (database.RestoreDump)."""
    rt, agency, source, dump, instance = job.rt, job.agency, job.source, job.dump, job.instance
    entry, record = job.entry, job.record
    if instance is None:
        pg_source = admin_source = _pg_source_for(source)
    else:
        pg_source = _instance_pg_source(source, instance, PG_RESTORE_ROLE)
        admin_source = _instance_pg_source(source, instance, PG_SUPERUSER)
    conn = connect(pg_source)
    admin = conn if instance is None else connect(admin_source)
    name = scratch_database_name(job.run_id, job.index)
    admin_dsn = dsn_with_database(admin_source.dsn, "postgres")
    scratch_dsn = dsn_with_database(pg_source.dsn, name)
    entry["scratch_database"] = name
    label = job.database or Path(job.path).name
    started = time.monotonic()
    try:
        try:
            prepared = _prepare(job)
        except UnsupportedFormatError as exc:
            record.fail(f"{label}: {exc.message} ({exc.hint})")
            entry["format"] = "unsupported"
            entry["verdict"] = "fail"
            return time.monotonic() - started
        except DumpError as exc:
            dump_does_not_restore(exc, label, entry, record)
            return time.monotonic() - started
        entry["format"] = prepared.format.name
        custom = prepared.format.archive != PLAIN  # an archive pg_restore reads
        dump = prepared.path
        try:
            expected = toc_tables(conn, dump) if custom else sql_tables(dump)
        except DumpError as exc:
            record.fail(f"{label}: {exc.message}")
            entry["verdict"] = "fail"
            return time.monotonic() - started
        pending: AbstractContextManager[None] = (
            nullcontext() if instance is not None
            else pending_database(rt, agency, source.id, name, admin_dsn))
        with pending:
            try:
                if instance is not None:
                    _prepare_instance_database(admin, admin_dsn, name,
                                               [] if custom else sql_roles(dump))
                if custom:
                    # pg_restore reads the archive from its file (a directory dump cannot
                    # come through stdin): named after the options, nothing on stdin.
                    restore_postgres(pg_source, name, lambda _sink: None, extra_args=(
                        *(() if instance is None else _PG_INSTANCE_RESTORE_ARGS),
                        f"--format={PG_RESTORE_FORMAT[prepared.format.archive]}", str(dump)))
                else:
                    if instance is None:
                        conn.psql(admin_dsn, f"CREATE DATABASE {quote_ident(name)} "
                                             "TEMPLATE template0;")
                    replay_sql(conn.tool("psql"), ["-v", "ON_ERROR_STOP=1",
                                                    "--single-transaction", "-d", scratch_dsn],
                               conn.child_env(), lambda sink: copy_dump(dump, sink),
                               what=f"psql into {name!r}")
                seconds = time.monotonic() - started
                _check_postgres(conn, scratch_dsn, source, expected, label, entry, record)
            except DumpError as exc:
                seconds = time.monotonic() - started
                dump_does_not_restore(exc, label, entry, record)
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


def _prepare(job: DumpJob[PgDrillSource]) -> PreparedDump:
    """The fetched dump in the shape its restore tool reads (gunzipped, a directory dump
    unpacked), in the drill's scratch directory. Postgres sources' own dumps are custom.

    Raises UnsupportedFormatError, DumpError (damaged gzip or tar, no room)."""
    workdir = job.scratch / f"dump-{job.index}.prepared"
    workdir.mkdir(mode=0o700)
    return prepare(job.dump, workdir, Path(job.path).name)


def _check_postgres(conn: PgConnection, dsn: str, source: PgDrillSource,
                    expected: list[str], label: str, entry: Fields,
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
    results, held = run_assertions(list(source.assertions),
                                   lambda sql: conn.psql(dsn, sql + ";"), label, record)
    entry["assertions"] = results
    entry["verdict"] = "fail" if failed or not held else "pass"
