"""Restoring a database source's snapshot into a database: `restic dump` streamed straight into
pg_restore (PostgreSQL), the mariadb/mysql client, or a new SQLite file. No prompts: runbooks and
restore drills call `restore_database` (or `drbackup restore-db --yes`) unattended."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from drbackup.config.models import (
    AgencyConfig,
    MysqlSource,
    PostgresSource,
    RestoreTarget,
    Source,
    SqliteSource,
)
from drbackup.config.models.sources import DSN_PASSWORD_HINT, dsn_has_password
from drbackup.engine import Snapshot
from drbackup.errors import NotFoundError, TargetRefusedError, UsageError
from drbackup.jobs.recording import recorded_run
from drbackup.jobs.restore import list_snapshots, pick_snapshot
from drbackup.jobs.restore_db_server import (
    refuse_dsn_with_target,
    refuse_partial_sql,
    restore_mysql_onto,
    restore_postgres_onto,
    retarget,
)
from drbackup.jobs.runtime import Runtime
from drbackup.jobs.tags import tag_id, tag_values
from drbackup.sources.dbselect import PartialSelection
from drbackup.sources.dumps import CountingSink
from drbackup.sources.dumpsections import OnlyTables

log = logging.getLogger(__name__)
__all__ = ["DbRestoreOutcome", "PartialSelection", "choose_db_snapshot", "refuse_secret_target",
           "restore_database"]


@dataclass(frozen=True)
class DbRestoreOutcome:
    run_id: int
    agency: str
    source: str
    kind: str
    snapshot: Snapshot
    database: str | None  # the database the snapshot holds (tag database=)
    into: str  # the target database name or file
    created: bool  # the target database/file did not exist before
    bytes: int
    seconds: float
    moved_aside: tuple[str, ...] = ()  # SQLite in place: the previous file and its companions
    server: str | None = None  # another server restored onto (user@host:port), else None
    properties: int = 0  # PostgreSQL: database owner/settings/comment/grants statements applied
    only: str = ""  # a partial restore: what it restored ("schema a, table b.c")



def refuse_secret_target(into: str | Path) -> None:
    """A restore target carrying a password would reach the restore tool's argv and the state
    database: refused with the check the config applies to a source's dsn (never echoing it)."""
    if isinstance(into, str) and dsn_has_password(into):
        raise UsageError("the restore target (--into) must not contain a password (it would "
                         "show in process lists and be recorded in the state database)",
                         DSN_PASSWORD_HINT + "; give --into without the password")


def refuse_selection(source: Source, selection: PartialSelection | None, *,
                     clean: bool = False) -> None:
    """What --schema/--table cannot mean for a source kind, refused in one line before
    anything runs."""
    if not selection:
        return
    if isinstance(source, MysqlSource) and clean:
        raise UsageError("--clean drops and re-creates the whole MariaDB/MySQL database, not "
                         "only the tables named with --table",
                         "leave out --clean and pass --overwrite: the dump's own DROP TABLE "
                         "IF EXISTS replaces each named table")
    if isinstance(source, SqliteSource):
        raise UsageError("a SQLite snapshot is restored whole: --schema/--table do not apply",
                         "restore it into a new file with --into and copy the table from "
                         "there (sqlite3 NEW.sqlite '.dump TABLE')")
    if isinstance(source, MysqlSource) and (
            selection.schemas or any(t.schema for t in selection.tables)):
        raise UsageError("a MariaDB/MySQL dump holds one database and no schemas: --schema "
                         "and --table SCHEMA.NAME do not apply",
                         "name the tables as --table NAME")


def choose_db_snapshot(rt: Runtime, agency: AgencyConfig, source: Source, snapshot: str = "latest",
                       *, database: str | None = None, store_name: str | None = None,
                       at: datetime | None = None) -> Snapshot:
    """The snapshot to restore: by id or "latest" (with `at`: the newest taken at or before
    it), of `database` when the source holds several.

    Raises NotFoundError when none matches (none that old) or the choice is ambiguous."""
    snapshots = list_snapshots(rt, agency, source.id, store_name=store_name)
    if database is not None:
        snapshots = [s for s in snapshots if tag_id(s, "database") == database]
    elif snapshot == "latest":
        names = sorted({tag_id(s, "database") or "" for s in snapshots} - {"_globals"})
        if len(names) > 1:
            raise NotFoundError(
                f"source {source.id!r} holds several databases ({', '.join(names)})",
                "name one with --database")
        snapshots = [s for s in snapshots if tag_id(s, "database") != "_globals"] or snapshots
    return pick_snapshot(snapshots, snapshot, at=at)


def restore_database(rt: Runtime, agency: AgencyConfig, source: Source | str,
                     snapshot: str | Snapshot = "latest", into: str | Path = "", *,
                     overwrite: bool = False, clean: bool = False, database: str | None = None,
                     store_name: str | None = None, trigger: str = "cli",
                     target: RestoreTarget | None = None, no_owner: bool = False,
                     no_privileges: bool = False, at: datetime | None = None,
                     selection: PartialSelection | None = None) -> DbRestoreOutcome:
    """Restore a postgres, mysql or sqlite source's snapshot into `into` (a database name, a
    PostgreSQL DSN, or a SQLite file path), on the source's server or on `target` (there
    `into` defaults to the dumped database's name). PostgreSQL: `no_owner`/`no_privileges` are
    pg_restore's --no-owner/--no-privileges (MariaDB/MySQL always restore without either: the
    DEFINERs become the restoring user and the dump holds no grants). `at`: the newest snapshot
    taken at or before it. `selection` (--schema/--table): only those objects; PostgreSQL from
    the dump's table of contents, MariaDB/MySQL the named tables' sections of the dump; a
    plain SQL dump and SQLite are refused.

    Raises UsageError (a password inside `into`, a target of another kind), TargetRefusedError
    (an existing non-empty target without overwrite, or a source kind that is not a database),
    DbRestoreRefusedError (roles the dump needs are missing), NotFoundError (no such snapshot),
    DumpError (the restore tool failed), and engine errors."""
    refuse_secret_target(into)  # before anything runs or is recorded: the target is recorded
    if isinstance(source, str):
        source = agency.source(source)
    if not isinstance(source, PostgresSource | MysqlSource | SqliteSource):
        raise TargetRefusedError(f"source {source.id!r} is a {source.kind} source, not a database",
                                 "use 'drbackup restore' for files and drop folders")
    target_text = str(into)
    if target is not None:
        if isinstance(source, SqliteSource):
            raise UsageError("a SQLite source restores into a file on this host, not onto a "
                             "server", "drop --target / --target-host; give --into FILE")
        refuse_dsn_with_target(target_text)
    elif not target_text:
        raise TargetRefusedError("no restore target given", "pass --into")
    refuse_selection(source, selection, clean=clean)
    rt.restic.require_supported()
    chosen = snapshot if isinstance(snapshot, Snapshot) else choose_db_snapshot(
        rt, agency, source, snapshot, database=database, store_name=store_name, at=at)
    if isinstance(source, PostgresSource) and chosen.tag("format") == "sql":
        refuse_partial_sql(selection)
    if chosen.tag("source") != source.id or not chosen.paths:
        raise NotFoundError(f"snapshot {chosen.short_id} is not a dump of source {source.id!r}",
                            "list the source's snapshots with 'drbackup snapshots'")
    if not target_text:  # onto another server: by default under the dumped database's name
        target_text = tag_id(chosen, "database") or ""
        if not target_text:
            raise TargetRefusedError(f"snapshot {chosen.short_id} names no database",
                                     "pass --into")
    server = target.describe() if target is not None else None
    name = store_name or agency.store
    repo = rt.target(agency, name)
    only = {"only": selection.describe()} if selection else {}
    dump_path = chosen.paths[0]
    with recorded_run(rt, "restore-db", agency.id, source=source.id, store=name,
                      trigger=trigger, failure_details=lambda: {
                          "snapshot_id": chosen.id, "into": target_text,
                          **({"server": server} if server else {}), **only}) as run:
        run_id = run.run_id
        started = time.monotonic()
        fed: list[CountingSink] = []
        moved: tuple[str, ...] = ()
        properties = 0

        def feed(sink: IO[bytes]) -> None:
            counting = CountingSink(sink)
            fed.append(counting)
            # restic dump streams straight into the consumer's stdin: no temp file.
            rt.restic.dump(repo, chosen.id, dump_path, counting)  # type: ignore[arg-type]

        def inspect(sink: IO[bytes]) -> None:
            rt.restic.dump(repo, chosen.id, dump_path, sink)

        if isinstance(source, PostgresSource):
            from drbackup.sources.postgres import FORMAT_CUSTOM

            pg = restore_postgres_onto(
                source if target is None else retarget(source, target),
                target_text, feed, inspect, dump_format=chosen.tag("format") or FORMAT_CUSTOM,
                overwrite=overwrite, clean=clean, no_owner=no_owner,
                no_privileges=no_privileges, where=server or "the source's server",
                selection=selection)
            into_name, created, properties = pg.database, pg.created, pg.properties
        elif isinstance(source, MysqlSource) and tag_id(chosen, "database") == "_globals":
            from drbackup.sources.mysqlgrants import restore_grants

            # Users and grants (#17 item 8): each statement checked, existing accounts kept.
            grants = restore_grants(source if target is None else retarget(source, target),
                                    feed)
            into_name, created, properties = "mysql", False, len(grants.created)
        elif isinstance(source, MysqlSource):
            from drbackup.sources.mysql import recorded_charset

            tables = OnlyTables(feed, [t.name for t in selection.tables]) if selection else None
            my = restore_mysql_onto(
                source if target is None else retarget(source, target),
                target_text, tables or feed, overwrite=overwrite, clean=clean,
                charset=recorded_charset(tag_values(chosen, "charset"),
                                         tag_values(chosen, "collation")),
                after_replay=tables.check if tables else None)
            into_name, created = my.database, my.created
        else:
            from drbackup.sources.sqlite import restore_sqlite

            lite = restore_sqlite(Path(target_text), feed, overwrite=overwrite)
            into_name, created = str(lite.path), lite.created
            moved = tuple(str(path) for path in lite.moved_aside)
        seconds = time.monotonic() - started
        restored = sum(f.count for f in fed)
        run.finish("success", details={
            "snapshot_id": chosen.id, "into": into_name, "created": created, "bytes": restored,
            "seconds": round(seconds, 3), "kind": source.kind, **only,
            **({"server": server} if server else {}),
            **({"properties": properties} if properties else {}),
            **({"moved_aside": list(moved)} if moved else {})})
    log.info("database restored", extra={"agency": agency.id, "source": source.id,
                                         "job": "restore-db", "run_id": str(run_id)})
    return DbRestoreOutcome(run_id, agency.id, source.id, source.kind, chosen,
                            tag_id(chosen, "database"), into_name, created,
                            restored, seconds, moved, server, properties,
                            selection.describe() if selection else "")
