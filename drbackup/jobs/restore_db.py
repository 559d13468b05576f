"""Restoring a database source's snapshot into a database: `restic dump` streamed straight into
pg_restore (PostgreSQL), the mariadb/mysql client, or a new SQLite file. No prompts: runbooks and
restore drills call `restore_database` (or `drbackup restore-db --yes`) unattended."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
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
    restore_mysql_onto,
    restore_postgres_onto,
    retarget,
)
from drbackup.jobs.runtime import Runtime
from drbackup.jobs.tags import tag_id, tag_values
from drbackup.sources.dumps import CountingSink

log = logging.getLogger(__name__)


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



def refuse_secret_target(into: str | Path) -> None:
    """A restore target carrying a password would reach the restore tool's argv and the state
    database: refused with the check the config applies to a source's dsn (never echoing it)."""
    if isinstance(into, str) and dsn_has_password(into):
        raise UsageError("the restore target (--into) must not contain a password (it would "
                         "show in process lists and be recorded in the state database)",
                         DSN_PASSWORD_HINT + "; give --into without the password")


def choose_db_snapshot(rt: Runtime, agency: AgencyConfig, source: Source, snapshot: str = "latest",
                       *, database: str | None = None, store_name: str | None = None
                       ) -> Snapshot:
    """The snapshot to restore: by id or "latest", of `database` when the source holds several.

    Raises NotFoundError when none matches or the choice is ambiguous."""
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
    return pick_snapshot(snapshots, snapshot)


def restore_database(rt: Runtime, agency: AgencyConfig, source: Source | str,
                     snapshot: str | Snapshot = "latest", into: str | Path = "", *,
                     overwrite: bool = False, clean: bool = False, database: str | None = None,
                     store_name: str | None = None, trigger: str = "cli",
                     target: RestoreTarget | None = None, no_owner: bool = False,
                     no_privileges: bool = False) -> DbRestoreOutcome:
    """Restore a postgres, mysql or sqlite source's snapshot into `into` (a database name, a
    PostgreSQL DSN, or a SQLite file path), on the source's server or on `target` (there
    `into` defaults to the dumped database's name). PostgreSQL: `no_owner`/`no_privileges` are
    pg_restore's --no-owner/--no-privileges (MariaDB/MySQL always restore without either: the
    DEFINERs become the restoring user and the dump holds no grants).

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
    rt.restic.require_supported()
    chosen = snapshot if isinstance(snapshot, Snapshot) else choose_db_snapshot(
        rt, agency, source, snapshot, database=database, store_name=store_name)
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
    dump_path = chosen.paths[0]
    with recorded_run(rt, "restore-db", agency.id, source=source.id, store=name,
                      trigger=trigger, failure_details=lambda: {
                          "snapshot_id": chosen.id, "into": target_text,
                          **({"server": server} if server else {})}) as run:
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
                no_privileges=no_privileges, where=server or "the source's server")
            into_name, created, properties = pg.database, pg.created, pg.properties
        elif isinstance(source, MysqlSource) and tag_id(chosen, "database") == "_globals":
            from drbackup.sources.mysqlgrants import restore_grants

            # Users and grants (#17 item 8): each statement checked, existing accounts kept.
            grants = restore_grants(source if target is None else retarget(source, target),
                                    feed)
            into_name, created, properties = "mysql", False, len(grants.created)
        elif isinstance(source, MysqlSource):
            from drbackup.sources.mysql import recorded_charset

            my = restore_mysql_onto(
                source if target is None else retarget(source, target),
                target_text, feed, overwrite=overwrite, clean=clean,
                charset=recorded_charset(tag_values(chosen, "charset"),
                                         tag_values(chosen, "collation")))
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
            "seconds": round(seconds, 3), "kind": source.kind,
            **({"server": server} if server else {}),
            **({"properties": properties} if properties else {}),
            **({"moved_aside": list(moved)} if moved else {})})
    log.info("database restored", extra={"agency": agency.id, "source": source.id,
                                         "job": "restore-db", "run_id": str(run_id)})
    return DbRestoreOutcome(run_id, agency.id, source.id, source.kind, chosen,
                            tag_id(chosen, "database"), into_name, created,
                            restored, seconds, moved, server, properties)
