"""Partial PostgreSQL restores and their options (#17 item 9) on the session's real server: one
small database with a self-contained schema (an enum, a serial table with a default, an index,
a trigger and its function, a comment, a foreign key, a view) and two public tables, backed up
twice (module-scoped) by a source whose dump_args leave out one table's data.

- `--schema sales` into a new database gives back that schema and nothing else:
  `pg_dump --schema-only -n sales` equal, every table's row md5 equal;
- `--table public.customers` gives back the table with its constraint and data
  (`pg_dump --schema-only -t` equal, row md5 equal), in a new database and in place after the
  table was dropped;
- `--at` between the two backups picks the older one (the rows equal the older state); an
  `--at` before the first backup is refused in one line;
- `dump_args = ["--exclude-table-data=public.audit_log"]` has its effect: the table comes
  back empty;
- a table the dump does not have is refused in one line before any database is created.

One restore goes through the CLI (--table, --at); the others call restore_database in-process
(one CLI start fewer each)."""

# ruff: noqa: S608 - test SQL built from our own generated names

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import pytest

from drbackup.config import load_config
from drbackup.config.models import AgencyConfig
from drbackup.errors import NotFoundError
from drbackup.jobs.backup import run_backup
from drbackup.jobs.repository import init_repository
from drbackup.jobs.restore_db import PartialSelection, restore_database
from drbackup.jobs.runtime import Runtime
from tests.support.servers import PG_BIN, PostgresServer
from tests.support.workspace import Workspace

SCHEMA = """
CREATE SCHEMA sales;
CREATE TYPE sales.mood AS ENUM ('calm', 'urgent');
CREATE TABLE sales.orders (id serial PRIMARY KEY, mood sales.mood NOT NULL DEFAULT 'calm',
                           note text DEFAULT '备注', changed int NOT NULL DEFAULT 0);
CREATE INDEX orders_note ON sales.orders (note);
COMMENT ON TABLE sales.orders IS '订单';
CREATE FUNCTION sales.bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.changed := NEW.changed + 1; RETURN NEW; END $$;
CREATE TRIGGER orders_bump BEFORE UPDATE ON sales.orders FOR EACH ROW
    EXECUTE FUNCTION sales.bump();
CREATE TABLE sales.lines (id int PRIMARY KEY, order_id int REFERENCES sales.orders (id),
                          qty int CHECK (qty > 0));
CREATE VIEW sales.urgent AS SELECT id, note FROM sales.orders WHERE mood = 'urgent';
INSERT INTO sales.orders (mood, note) SELECT (ARRAY['calm', 'urgent'])[g % 2 + 1]::sales.mood,
    '订单 ' || g FROM generate_series(1, 300) g;
INSERT INTO sales.lines SELECT g, g % 300 + 1, g % 5 + 1 FROM generate_series(1, 600) g;
CREATE TABLE public.customers (id int PRIMARY KEY, name text NOT NULL UNIQUE);
INSERT INTO public.customers SELECT g, '客户-' || g FROM generate_series(1, 200) g;
CREATE TABLE public.audit_log (id int, what text);
INSERT INTO public.audit_log SELECT g, 'event ' || g FROM generate_series(1, 100) g;
"""


def schema_dump(server: PostgresServer, database: str, *flags: str) -> str:
    """pg_dump --schema-only, without its per-run lines (\\restrict keys, version comments)."""
    done = subprocess.run(
        [str(PG_BIN / "pg_dump"), "--schema-only", *flags, "-d", server.dsn(database)],
        capture_output=True, text=True, env=server.env(), check=True)
    return "\n".join(line for line in done.stdout.splitlines()
                     if not line.startswith(("\\restrict", "\\unrestrict", "-- Dumped")))


def rows(server: PostgresServer, database: str, table: str) -> str:
    return server.query(
        f"SELECT count(*) || ':' || md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
        f" FROM {table} t", database)


def relations(server: PostgresServer, database: str) -> set[str]:
    return set(server.query(
        "SELECT string_agg(n.nspname || '.' || c.relname, ' ') FROM pg_class c JOIN "
        "pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'v', 'S') AND "
        "n.nspname NOT IN ('pg_catalog', 'information_schema')", database).split())


@dataclass
class World:
    workspace: Workspace
    server: PostgresServer
    database: str
    rt: Runtime
    agency: AgencyConfig
    first: datetime  # when the first backup's snapshot was taken
    second: datetime
    older: dict[str, str]  # per-table rows at the first backup
    newer: dict[str, str]

    def new_name(self) -> str:
        return f"part_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, restic_binary: str,
          postgres_server: PostgresServer) -> Iterator[World]:
    server = postgres_server
    database = server.create_database("partial")
    server.psql(SCHEMA, database)
    workspace = Workspace(tmp_path_factory.mktemp("partial-pg") / "ws")
    workspace.config["daemon"]["restic"] = restic_binary
    workspace.add_agency("records")
    password = workspace.secret_file("pg.password", server.password + "\n")
    workspace.add_source("records", "db", "postgres", dsn=server.dsn(database), min_size=100,
                         password_file=str(password),
                         dump_args=["--exclude-table-data=public.audit_log"],
                         restore_args=["--no-tablespaces"])
    config = load_config(workspace.write())
    agency = config.agency("records")
    rt = Runtime.create(config)
    tables = ("sales.orders", "sales.lines", "public.customers")
    try:
        init_repository(rt, agency)
        older = {t: rows(server, database, t) for t in tables}
        first = run_backup(rt, agency, agency.source("db"))
        assert first.result == "success"
        server.psql("INSERT INTO public.customers SELECT g, '新客户-' || g "
                    "FROM generate_series(201, 260) g; UPDATE sales.orders SET note = 'x' "
                    "WHERE id < 10", database)
        newer = {t: rows(server, database, t) for t in tables}
        assert newer["public.customers"] != older["public.customers"]
        second = run_backup(rt, agency, agency.source("db"))
        assert second.result == "success"
        times = sorted(s.time for s in rt.restic.snapshots(rt.target(agency, agency.store)))
        assert len(times) == 2
        yield World(workspace, server, database, rt, agency, times[0], times[1], older, newer)
    finally:
        rt.close()


def test_schema_restore_gives_back_exactly_that_schema_and_dump_args_take_effect(
        world: World) -> None:
    server, into = world.server, world.new_name()
    done = restore_database(world.rt, world.agency, "db", into=into,
                            selection=PartialSelection.of(schemas=["sales"],
                                                          tables=["audit_log"]))
    assert done.created and done.only == "schema sales, table audit_log"
    assert schema_dump(server, into, "-n", "sales") == schema_dump(
        server, world.database, "-n", "sales")
    for table in ("sales.orders", "sales.lines"):
        assert rows(server, into, table) == world.newer[table]
    assert relations(server, into) == {"sales.orders", "sales.orders_id_seq", "sales.lines",
                                       "sales.urgent", "public.audit_log"}
    # dump_args --exclude-table-data=public.audit_log: the table is there, its rows are not.
    assert rows(server, into, "public.audit_log").startswith("0:")
    assert rows(server, world.database, "public.audit_log").startswith("100:")
    # The trigger and its function came back working.
    server.psql("UPDATE sales.orders SET note = 'y' WHERE id = 1", into)
    assert server.query("SELECT changed FROM sales.orders WHERE id = 1", into) == "2"


def test_table_restore_new_database_then_in_place_and_at_picks_the_older(
        world: World) -> None:
    server, workspace = world.server, world.workspace
    restore = ["restore-db", "--agency", "records", "--source", "db", "--yes"]
    # --at between the two backups: the older snapshot, the older rows.
    between = world.first + (world.second - world.first) / 2
    into = world.new_name()
    done = workspace.cli(*restore, "--table", "public.customers", "--at", between.isoformat(),
                         "--into", into, check=True)
    assert "(only table public.customers)" in done.stdout
    assert schema_dump(server, into, "-t", "public.customers") == schema_dump(
        server, world.database, "-t", "public.customers")
    assert rows(server, into, "public.customers") == world.older["public.customers"]
    assert relations(server, into) == {"public.customers"}
    # In place, the bad day: the table was dropped from the live database.
    before = schema_dump(server, world.database, "-t", "public.customers")
    server.psql("DROP TABLE public.customers", world.database)
    restore_database(world.rt, world.agency, "db", into=world.database, overwrite=True,
                     selection=PartialSelection.of(tables=["customers"]))
    assert schema_dump(server, world.database, "-t", "public.customers") == before
    assert rows(server, world.database, "public.customers") == world.newer["public.customers"]
    assert rows(server, world.database, "sales.orders") == world.newer["sales.orders"]
    # Before the first backup: nothing to pick, in one line.
    with pytest.raises(NotFoundError) as early:
        restore_database(world.rt, world.agency, "db", into=into,
                         at=world.first.replace(year=2000),
                         selection=PartialSelection.of(tables=["customers"]))
    assert "no snapshot at or before 2000-" in early.value.message
    assert "\n" not in early.value.message


def test_a_name_the_dump_lacks_is_refused_before_anything(world: World) -> None:
    server, missing = world.server, world.new_name()
    with pytest.raises(NotFoundError) as refused:
        restore_database(world.rt, world.agency, "db", into=missing,
                         selection=PartialSelection.of(tables=["sales.nothing"]))
    line = refused.value.message
    assert "the dump has no table 'sales.nothing'" in line and "sales.orders" in line
    assert "\n" not in line
    assert missing not in server.query("SELECT string_agg(datname, ' ') FROM pg_database")
