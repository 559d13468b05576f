"""`restore-db --all-databases` (#17 item 8): every database a source's snapshots hold, each
under its own name, on the source's server or another. PostgreSQL's globals (roles,
tablespaces) come first so the databases find their owners; MariaDB/MySQL's users and grants
last, as their grants on tables and routines need those to exist. A plan, then its execution:
the CLI renders each database's result and the summary; one database's failure does not stop
the others (in a disaster everything that can come back should), and the run's exit code is
the first failure's.

A snapshot whose tags are not trusted (tags.tag_problem) is left out of the plan and reported."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from drbackup.config.models import AgencyConfig, MysqlSource, PostgresSource, RestoreTarget
from drbackup.engine import Snapshot
from drbackup.errors import DrBackupError, NotFoundError
from drbackup.jobs.restore import list_snapshots
from drbackup.jobs.restore_db import restore_database
from drbackup.jobs.runtime import Runtime
from drbackup.jobs.tags import tag_id, tag_problem

GLOBALS = "_globals"  # the database= tag of the globals / users-and-grants (sources/postgres.py,
# sources/mysql.py)


@dataclass(frozen=True)
class PlannedDatabase:
    database: str
    snapshot: Snapshot
    kind: str = "postgres"  # the source's kind

    @property
    def into(self) -> str:
        """Where it goes: PostgreSQL's globals through the maintenance database, MariaDB's
        users and grants into its `mysql` system database, others by name."""
        if self.database != GLOBALS:
            return self.database
        return "postgres" if self.kind == "postgres" else "mysql"


@dataclass(frozen=True)
class AllDatabasesPlan:
    agency: str
    source: str
    items: tuple[PlannedDatabase, ...]  # by name; globals first (PostgreSQL) or last (MySQL)
    refused: tuple[str, ...] = ()  # problems of snapshots left out (untrusted tags)


@dataclass(frozen=True)
class DatabaseResult:
    database: str
    snapshot_id: str
    ok: bool
    into: str
    created: bool = False
    bytes: int = 0
    seconds: float = 0.0
    error: str | None = None  # the failure's one line
    exit_code: int = 0


@dataclass(frozen=True)
class AllDatabasesOutcome:
    agency: str
    source: str
    server: str | None
    results: tuple[DatabaseResult, ...]
    seconds: float

    @property
    def failed(self) -> list[str]:
        return [r.database for r in self.results if not r.ok]

    @property
    def exit_code(self) -> int:
        """The first failure's code, else 0."""
        return next((r.exit_code for r in self.results if not r.ok), 0)


def plan_all_databases(rt: Runtime, agency: AgencyConfig, source: PostgresSource | MysqlSource,
                       *, store_name: str | None = None) -> AllDatabasesPlan:
    """The latest snapshot of each database the source's snapshots name.

    Raises NotFoundError when there is none."""
    latest: dict[str, Snapshot] = {}
    refused: list[str] = []
    for snapshot in list_snapshots(rt, agency, source.id, store_name=store_name):
        problem = tag_problem(snapshot)
        database = tag_id(snapshot, "database")
        if problem is not None or database is None:
            refused.append(problem or f"snapshot {snapshot.short_id} names no database")
            continue
        if database not in latest or snapshot.time > latest[database].time:
            latest[database] = snapshot
    if not latest:
        raise NotFoundError(f"source {source.id!r} of agency {agency.id!r} has no database "
                            "snapshot", "back it up first, or check --store")
    # PostgreSQL's globals first: the databases' objects name their owner roles. MariaDB/MySQL's
    # users and grants last: a grant on a table or routine needs it to exist, and no object of
    # a replayed dump names an account (every DEFINER becomes the restoring user).
    last = source.kind != "postgres"
    names = sorted(latest, key=lambda name: ((name == GLOBALS) == last, name))
    items = tuple(PlannedDatabase(n, latest[n], source.kind) for n in names)
    return AllDatabasesPlan(agency.id, source.id, items, tuple(refused))


def restore_all_databases(rt: Runtime, agency: AgencyConfig,
                          source: PostgresSource | MysqlSource, plan: AllDatabasesPlan, *,
                          target: RestoreTarget | None = None, overwrite: bool = False,
                          clean: bool = False, no_owner: bool = False,
                          no_privileges: bool = False, store_name: str | None = None,
                          on_result: Callable[[DatabaseResult], None] | None = None
                          ) -> AllDatabasesOutcome:
    """Restore every planned database in order; each is its own recorded restore-db run.
    Expected failures (DrBackupError) are results, not raised: the next database still runs."""
    started = time.monotonic()
    results: list[DatabaseResult] = []
    for item in plan.items:
        try:
            done = restore_database(rt, agency, source, item.snapshot, item.into,
                                    overwrite=overwrite, clean=clean, store_name=store_name,
                                    target=target, no_owner=no_owner,
                                    no_privileges=no_privileges, trigger="all-databases")
            result = DatabaseResult(item.database, item.snapshot.id, True, done.into,
                                    done.created, done.bytes, done.seconds)
        except DrBackupError as exc:
            result = DatabaseResult(item.database, item.snapshot.id, False, item.into,
                                    error=exc.one_line(), exit_code=int(exc.exit_code))
        results.append(result)
        if on_result is not None:
            on_result(result)
    return AllDatabasesOutcome(agency.id, source.id,
                               target.describe() if target is not None else None,
                               tuple(results), time.monotonic() - started)
