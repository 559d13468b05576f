"""What the database drills (postgres.py, mysql.py, sqlite.py) share: the drill around their
dumps, and the checks every engine runs the same way.

The drill restores the latest dump into a throwaway database and checks it:
- postgres and mysql sources: the latest snapshot of each database the source dumps;
- dumpdir sources: the newest dump file of the latest snapshot;
- sqlite sources: the latest copy.
Each dump is fetched into the drill's scratch directory, then handed to its engine's
`RestoreDump` (one per module), which restores and checks it and fills in the dump's entry of
the report. With `drill_target = "local-instance"` (postgres, mysql, dumpdir sources) the dumps
go into a throwaway server started for the drill (`drbackup/verify/instance.py`) in its own
scratch directory `drill-<run>-db`, reachable only through a unix socket there; the source's
server is not contacted at all. The server is stopped and its directory removed afterwards (a
killed drill's server at the next start).

Checks: every table the dump declares is present, row counts per table (reported), and the
source's `assert` SQL statements, each of which must return true. A dump that cannot be restored
(truncated, damaged) fails the drill with the tool's own words.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Generic, TypeVar

from drbackup.config.models import (
    LOCAL_INSTANCE,
    AgencyConfig,
    DumpdirSource,
    MysqlSource,
    PostgresSource,
    SqliteSource,
)
from drbackup.engine import RepoTarget, Snapshot
from drbackup.jobs.drills.common import (
    DrillOutcome,
    DrillRecord,
    Fields,
    RestoreTiming,
    run_drill,
)
from drbackup.jobs.runtime import Runtime
from drbackup.jobs.snapshot_catalogue import repository_snapshots
from drbackup.jobs.tags import source_filter, tag_id
from drbackup.sources.base import DumpError
from drbackup.sources.dumps import CountingSink
from drbackup.sources.postgres import GLOBALS
from drbackup.verify.instance import (
    LocalInstance,
    mariadb_instance,
    mariadb_programs,
    postgres_bin_dir,
    postgres_instance,
    postgres_run_as,
)
from drbackup.verify.scratch import scratch_space

log = logging.getLogger(__name__)
_SQL_TABLE = re.compile(r"^CREATE TABLE (?:IF NOT EXISTS )?([^\s(]+)", re.MULTILINE)
_TRUE = {"t", "true", "1", "yes", "on"}
DbSource = PostgresSource | MysqlSource | SqliteSource | DumpdirSource
S = TypeVar("S", bound=DbSource)


@dataclass(frozen=True)
class DumpJob(Generic[S]):
    """One dump of a database drill, fetched into the scratch directory: what its engine's
    RestoreDump restores and checks."""

    rt: Runtime
    agency: AgencyConfig
    source: S
    dump: Path  # the fetched dump file
    path: str  # the dump's path in the snapshot
    database: str | None  # the snapshot's database tag
    scratch: Path  # the drill's scratch directory
    run_id: int
    index: int  # the dump's place in the drill (scratch database names)
    instance: LocalInstance | None  # the drill's local instance, None: the source's server
    entry: Fields  # the dump's entry in the report, filled in by the RestoreDump
    record: DrillRecord
    snapshot: Snapshot | None = None  # the snapshot the dump came from (its tags)


# Restore and check one dump; returns the seconds the restore took.
RestoreDump = Callable[[DumpJob[S]], float]


class RefusedDumpError(DumpError):
    """A dump the drill will not replay because of what it asks for (not because it is
    damaged): the drill fails with this reason."""


# -- checks ----------------------------------------------------------------------------------


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


def _assertion_true(rows: list[str]) -> bool:
    return len(rows) == 1 and rows[0].strip().lower() in _TRUE


def dump_does_not_restore(exc: DumpError, label: str, entry: Fields,
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


def run_assertions(statements: list[str], query: Callable[[str], list[str]], label: str,
                   record: DrillRecord) -> tuple[list[Fields], bool]:
    """Run each configured SQL assertion through `query` (which raises DumpError or
    sqlite3.Error on a bad statement); returns the results and whether all held."""
    results: list[Fields] = []
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


def copy_dump(path: Path, sink: IO[bytes]) -> None:
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sink.write(block)


# -- the drill -------------------------------------------------------------------------------


def _latest_per_database(snapshots: list[Snapshot]) -> list[Snapshot]:
    latest: dict[str, Snapshot] = {}
    for snapshot in sorted(snapshots, key=lambda s: s.time):
        database = tag_id(snapshot, "database") or ""
        if database == GLOBALS:
            continue
        latest[database] = snapshot
    return [latest[k] for k in sorted(latest)]


def run_db_drill(rt: Runtime, agency: AgencyConfig, source: S, restore: RestoreDump[S], *,
                 trigger: str = "cli") -> DrillOutcome:
    """Restore-drill a database source (see the module doc), each dump with `restore`. A dump
    that does not restore or fails a check gives verdict "fail"; unreachable stores raise
    their DrBackupError."""
    return run_drill(rt, agency, source, "db", trigger,
                     lambda record: _db_drill_body(rt, agency, source, restore, record))


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


def _db_drill_body(rt: Runtime, agency: AgencyConfig, source: S, restore: RestoreDump[S],
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
    run_id = record.run_id
    databases: list[Fields] = []
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
            database = tag_id(snapshot, "database")
            entry: Fields = {"snapshot_id": snapshot.id, "dump": path, "database": database,
                             "bytes": counter.count, "drill_target": target}
            seconds_restore = restore(DumpJob(rt, agency, source, dump_file, path, database,
                                              scratch, run_id, index, instance, entry, record,
                                              snapshot))
            total_bytes += counter.count
            total_seconds += time.monotonic() - started
            entry["seconds"] = round(seconds_restore, 3)
            databases.append(entry)
    record.timing = RestoreTiming(total_bytes, total_seconds, total_bytes,
                                  agency.rto.total_seconds())
    record.report["databases"] = databases
    record.report["tables"] = [t for d in databases for t in _tables(d)]
    record.details["databases"] = [
        {k: v for k, v in d.items() if k in ("database", "snapshot_id", "verdict")}
        for d in databases]
    described = record.report.get("drill_instance")
    if isinstance(described, dict):
        record.details["drill_instance"] = {
            k: v for k, v in described.items()
            if k in ("engine", "version", "start_seconds")}


def _tables(entry: Fields) -> list[object]:
    tables = entry.get("tables", [])
    return tables if isinstance(tables, list) else []


def _dump_path(rt: Runtime, repo: RepoTarget, snapshot: Snapshot, source: DbSource) -> str:
    if not isinstance(source, DumpdirSource):
        return snapshot.paths[0]
    files = [n for n in rt.restic.ls(repo, snapshot.id) if n.type == "file"]
    if not files:
        raise DumpError(f"snapshot {snapshot.short_id} of {source.id!r} holds no file",
                        "check the drop folder's pattern")
    return max(files, key=lambda n: (n.mtime.timestamp() if n.mtime else 0, n.path)).path
