"""Partial MariaDB restores and their options (#17 item 9) on the session's real server: one
small database (two tables joined by a foreign key, a trigger, a view, a routine, a third table
whose data dump_args leave out), backed up once (module-scoped).

- `--table permits --table notes` gives back exactly those tables: their `SHOW CREATE TABLE`,
  `mariadb-dump --skip-dump-date` and per-table row md5 equal to the source's, the trigger with
  them; no other table, view or routine; in place, a dropped table comes back the same;
- `dump_args = ["--ignore-table-data=DB.audit"]` has its effect: the table comes back empty;
- a table the dump does not have fails the restore in one line and the database it created is
  dropped; `--schema` is refused for MariaDB in one line."""

# ruff: noqa: S608 - test SQL built from our own generated names

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from drbackup.config import load_config
from drbackup.config.models import AgencyConfig
from drbackup.errors import DumpFailedError, UsageError
from drbackup.jobs.backup import run_backup
from drbackup.jobs.repository import init_repository
from drbackup.jobs.restore_db import PartialSelection, restore_database
from drbackup.jobs.runtime import Runtime
from tests.support.servers import DB_TEST_USER, MariaDBServer
from tests.support.workspace import Workspace

SCHEMA = """
CREATE TABLE permits (id INT PRIMARY KEY, holder VARCHAR(64)) ENGINE=InnoDB
    DEFAULT CHARSET=utf8mb4;
INSERT INTO permits VALUES (1, '王小明'), (2, 'Zoë'), (3, '李四');
CREATE TABLE notes (id INT PRIMARY KEY, permit INT, body TEXT,
                    FOREIGN KEY (permit) REFERENCES permits (id)) ENGINE=InnoDB
    DEFAULT CHARSET=utf8mb4;
INSERT INTO notes VALUES (1, 1, '已批准'), (2, 3, 'pending');
CREATE TRIGGER notes_trim BEFORE INSERT ON notes FOR EACH ROW SET NEW.body = TRIM(NEW.body);
CREATE TABLE audit (id INT, what TEXT) ENGINE=InnoDB;
INSERT INTO audit VALUES (1, 'a'), (2, 'b');
CREATE TABLE other (id INT PRIMARY KEY);
INSERT INTO other VALUES (7);
CREATE VIEW issued AS SELECT id, holder FROM permits;
CREATE PROCEDURE holders() SELECT holder FROM permits ORDER BY id;
"""


def create_table(server: MariaDBServer, database: str, table: str) -> str:
    return server.query(f"SHOW CREATE TABLE `{table}`", database)


def rows(server: MariaDBServer, database: str, table: str) -> str:
    """Row count and md5 of the rows (each as a JSON array of its columns), in order."""
    columns = _columns(server, database, table)
    return server.query(f"SELECT CONCAT(COUNT(*), ':', COALESCE(MD5(GROUP_CONCAT(JSON_ARRAY("
                        f"{columns}) ORDER BY 1 SEPARATOR '|')), '')) FROM `{table}`", database)


def _columns(server: MariaDBServer, database: str, table: str) -> str:
    return server.query("SELECT GROUP_CONCAT(CONCAT('`', COLUMN_NAME, '`') ORDER BY "
                        "ORDINAL_POSITION) FROM information_schema.COLUMNS WHERE "
                        f"TABLE_SCHEMA = '{database}' AND TABLE_NAME = '{table}'")


def table_dump(server: MariaDBServer, database: str, *tables: str) -> str:
    """`mariadb-dump --skip-dump-date` of the tables (structure, rows, triggers), without the
    header lines naming the database."""
    done = subprocess.run(
        ["mariadb-dump", f"--defaults-extra-file={server.defaults_file()}", "--skip-dump-date",
         "--triggers", "--hex-blob", database, *tables],
        capture_output=True, text=True, check=True)
    return "\n".join(line for line in done.stdout.splitlines()
                     if not line.startswith(("-- Host:", "-- MariaDB dump")))


def objects(server: MariaDBServer, database: str) -> set[str]:
    found = server.query(
        "SELECT GROUP_CONCAT(n SEPARATOR ' ') FROM (SELECT TABLE_NAME AS n FROM "
        f"information_schema.TABLES WHERE TABLE_SCHEMA = '{database}' UNION ALL SELECT "
        "ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = "
        f"'{database}' UNION ALL SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE "
        f"TRIGGER_SCHEMA = '{database}') x")
    return set() if found == "NULL" else set(found.split())


@dataclass
class World:
    server: MariaDBServer
    database: str
    rt: Runtime
    agency: AgencyConfig

    def new_name(self) -> str:
        return f"part_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, restic_binary: str,
          mariadb_server: MariaDBServer) -> Iterator[World]:
    server = mariadb_server
    database = server.create_database("partial")
    server.sql(SCHEMA, database)
    workspace = Workspace(tmp_path_factory.mktemp("partial-my") / "ws")
    workspace.config["daemon"]["restic"] = restic_binary
    workspace.add_agency("records")
    password = workspace.secret_file("my.password", server.password + "\n")
    workspace.add_source("records", "db", "mysql", database=database, host="127.0.0.1",
                         port=server.port, user=DB_TEST_USER, password_file=str(password),
                         min_size=100, dump_args=[f"--ignore-table-data={database}.audit"],
                         restore_args=["--max-allowed-packet=64M"])
    config = load_config(workspace.write())
    agency = config.agency("records")
    rt = Runtime.create(config)
    try:
        init_repository(rt, agency)
        assert run_backup(rt, agency, agency.source("db")).result == "success"
        yield World(server, database, rt, agency)
    finally:
        rt.close()


def test_table_restore_gives_back_exactly_those_tables_and_dump_args_take_effect(
        world: World) -> None:
    server, into = world.server, world.new_name()
    done = restore_database(world.rt, world.agency, "db", into=into,
                            selection=PartialSelection.of(tables=["permits", "notes", "audit"]))
    assert done.created and done.only == "table permits, table notes, table audit"
    assert objects(server, into) == {"permits", "notes", "notes_trim", "audit"}
    for table in ("permits", "notes"):
        assert create_table(server, into, table) == create_table(server, world.database, table)
        assert rows(server, into, table) == rows(server, world.database, table)
    # --ignore-table-data: the table is there, its rows are not.
    assert rows(server, into, "audit").startswith("0:")
    assert rows(server, world.database, "audit").startswith("2:")
    assert table_dump(server, into, "permits", "notes") == table_dump(
        server, world.database, "permits", "notes")
    server.sql("INSERT INTO notes VALUES (3, 2, '  trimmed  ')", into)
    assert server.query("SELECT body FROM notes WHERE id = 3", into) == "trimmed"
    # In place, the bad day: a table was dropped from the live database.
    before = table_dump(server, world.database, "notes")
    server.sql("DROP TABLE notes", world.database)
    restore_database(world.rt, world.agency, "db", into=world.database, overwrite=True,
                     selection=PartialSelection.of(tables=["notes"]))
    assert table_dump(server, world.database, "notes") == before
    assert rows(server, world.database, "other") == "1:" + server.query(
        "SELECT MD5(JSON_ARRAY(7))")


def test_a_missing_table_fails_and_drops_the_database_it_created(world: World) -> None:
    server, into = world.server, world.new_name()
    with pytest.raises(DumpFailedError) as failed:
        restore_database(world.rt, world.agency, "db", into=into,
                         selection=PartialSelection.of(tables=["nowhere"]))
    assert "the dump has no table 'nowhere'" in failed.value.message
    assert "\n" not in failed.value.message
    assert "was dropped again" in failed.value.hint
    assert server.query(f"SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE "
                        f"SCHEMA_NAME = '{into}'") == "0"
    with pytest.raises(UsageError) as refused:
        restore_database(world.rt, world.agency, "db", into=into,
                         selection=PartialSelection.of(schemas=["app"]))
    assert "holds one database and no schemas" in refused.value.message
