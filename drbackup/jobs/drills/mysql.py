"""MariaDB/MySQL drills: the latest dump of the source's database (mysqldump SQL), replayed into
a throwaway database `drbackup_drill_<run>_<n>_<random>` (see database.py for the drill around
the dumps).

The replay runs as a user whose rights end at the scratch database (my.create_replay_user); on
the source's server, when its user may not create one, as that user (the client still cannot
read this host's files: mysqlreplay). With `drill_target = "local-instance"` the dump goes into
a throwaway MariaDB started for the drill instead. Checks: every table the dump creates is
present, row counts per table, and the source's assertions. The scratch database and its user
are dropped in a `finally`; ones left by a killed drill are dropped at the next start
(`drop_scratch_database`, in the table of drbackup/jobs/drills/__init__.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext

from drbackup.config.models import AgencyConfig, MysqlSource, Source
from drbackup.jobs.drills.common import (
    DrillOutcome,
    Fields,
    pending_database,
    scratch_database_name,
)
from drbackup.jobs.drills.database import (
    DumpJob,
    copy_dump,
    dump_does_not_restore,
    run_assertions,
    run_db_drill,
    sql_tables,
)
from drbackup.jobs.runtime import Runtime
from drbackup.jobs.tags import tag_values
from drbackup.sources import mysql as my
from drbackup.sources.base import DumpError
from drbackup.verify.instance import LocalInstance

log = logging.getLogger(__name__)


def drill_mysql(rt: Runtime, agency: AgencyConfig, source: Source, trigger: str
                ) -> DrillOutcome:
    """The table's entry for mysql sources (common.DrillFunction)."""
    if not isinstance(source, MysqlSource):
        raise TypeError(f"a MySQL drill needs a mysql source, not {source.kind!r}")
    return run_db_drill(rt, agency, source, _restore_dump, trigger=trigger)


def drop_scratch_database(source: Source, note: Mapping[str, object]) -> None:
    """Drop the scratch database and its user a killed drill of `source` left
    (common.ScratchDropper)."""
    if isinstance(source, MysqlSource):
        my_conn = my.connect(source)
        try:
            my_conn.query(f"DROP DATABASE IF EXISTS {my.quote_ident(str(note['database']))};")
            my.drop_replay_user(my_conn, str(note["database"]))
        finally:
            my_conn.cleanup()


def _instance_my_source(source: MysqlSource, instance: LocalInstance) -> MysqlSource:
    """The drill's local instance as a MysqlSource: its socket, root without a password."""
    return MysqlSource.model_validate({
        "id": source.id, "kind": "mysql", "database": source.database, "all": source.all,
        "socket": str(instance.socket), "user": "root",
        "client_binary": source.client_binary})


def _restore_dump(job: DumpJob[MysqlSource]) -> float:
    """Restore and check one dump as a user whose rights end at the scratch database (see
    my.create_replay_user); on the source's server, when its user may not create one, as that
    user (the client still cannot read this host's files: mysqlreplay). database.RestoreDump."""
    rt, agency, source, dump, instance = job.rt, job.agency, job.source, job.dump, job.instance
    entry, record = job.entry, job.record
    server = source if instance is None else _instance_my_source(source, instance)
    name = scratch_database_name(job.run_id, job.index)
    entry["scratch_database"] = name
    entry["format"] = "sql"
    label = job.database or source.database or name
    expected = [t.split(".", 1)[1] for t in sql_tables(dump, "_")]
    started = time.monotonic()
    admin = my.connect(server)
    pending: AbstractContextManager[None] = (
        nullcontext() if instance is not None
        else pending_database(rt, agency, source.id, name, ""))
    checker: my.MyConnection | None = None
    try:
        with pending:
            try:
                replay = _replay_user(admin, name, entry, instance)
                # The scratch database gets the dumped database's character set, as a
                # restore does (#17 item 2).
                charset = None if job.snapshot is None else my.recorded_charset(
                    tag_values(job.snapshot, "charset"), tag_values(job.snapshot, "collation"))
                done = my.restore_mysql(server, name, lambda sink: copy_dump(dump, sink),
                                        replay_as=replay, charset=charset)
                if done.charset is not None:
                    entry["charset"] = f"{done.charset.charset}/{done.charset.collation}"
                checker = admin if replay is None else my.connect(replay)
                conn = checker
                seconds = time.monotonic() - started
                literal = my.quote_literal(name)
                listing = ("SELECT table_name FROM information_schema.tables WHERE "  # noqa: S608
                           f"table_schema = {literal} AND table_type = 'BASE TABLE' "
                           "ORDER BY table_name;")
                tables = conn.query(listing)
                counts: list[Fields] = []
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
                results, held = run_assertions(
                    list(source.assertions),
                    lambda sql: conn.query(f"USE {my.quote_ident(name)};\n{sql};"),
                    label, record)
                entry["assertions"] = results
                entry["verdict"] = "fail" if failed or not held else "pass"
            except DumpError as exc:
                seconds = time.monotonic() - started
                dump_does_not_restore(exc, label, entry, record)
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


def _replay_user(admin: my.MyConnection, name: str, entry: Fields,
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
