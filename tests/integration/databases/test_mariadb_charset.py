"""A MariaDB database keeps its character set through a restore (#17 item 2): the dump carries
no CREATE DATABASE, so the backup records the database's default character set and collation
in the snapshot's tags and restore-db creates the database with them; an in-place --clean keeps
the existing database's. The server's own default is latin1 here, as on a stock MariaDB 10."""

# ruff: noqa: S608 - test SQL built from our own generated names

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from drbackup.config import load_config
from drbackup.jobs.backup import run_backup
from drbackup.jobs.drills import drill_source
from drbackup.jobs.repository import init_repository
from drbackup.jobs.restore_db import restore_database
from drbackup.jobs.runtime import Runtime
from tests.support.dbcheck import local_snapshots
from tests.support.servers import DB_TEST_USER, MariaDBServer
from tests.support.workspace import Workspace

SCHEMA = """
CREATE TABLE permits (id INT PRIMARY KEY, holder VARCHAR(64)) ENGINE=InnoDB;
INSERT INTO permits VALUES (1, '王小明'), (2, 'Zoë'), (3, '李四');
CREATE TABLE notes (id INT PRIMARY KEY, permit INT, body TEXT,
                    FOREIGN KEY (permit) REFERENCES permits (id)) ENGINE=InnoDB;
INSERT INTO notes VALUES (1, 1, '已批准'), (2, 3, 'pending');
CREATE TRIGGER notes_upper BEFORE INSERT ON notes FOR EACH ROW SET NEW.body = TRIM(NEW.body);
CREATE PROCEDURE holders() SELECT holder FROM permits ORDER BY id;
"""


@pytest.fixture
def latin1_server(mariadb_server: MariaDBServer) -> Iterator[MariaDBServer]:
    """The session's MariaDB with latin1 as the server default for new connections (restored
    afterwards: other tests share the server)."""
    before = mariadb_server.query("SELECT @@GLOBAL.character_set_server, "
                                  "@@GLOBAL.collation_server").split("\t")
    mariadb_server.sql("SET GLOBAL character_set_server = latin1, "
                       "collation_server = latin1_swedish_ci")
    try:
        yield mariadb_server
    finally:
        mariadb_server.sql(f"SET GLOBAL character_set_server = {before[0]}, "
                           f"collation_server = {before[1]}")


def _dump(server: MariaDBServer, database: str) -> str:
    return subprocess.run(
        ["mariadb-dump", f"--defaults-extra-file={server.defaults_file()}", "--skip-dump-date",
         "--routines", "--events", "--triggers", "--hex-blob", "--databases", database],
        capture_output=True, text=True, check=True).stdout


def _charset(server: MariaDBServer, database: str) -> str:
    return server.query("SELECT CONCAT(DEFAULT_CHARACTER_SET_NAME, '/', "
                        "DEFAULT_COLLATION_NAME) FROM information_schema.SCHEMATA "
                        f"WHERE SCHEMA_NAME = '{database}'")


def test_utf8mb4_database_restores_as_utf8mb4_on_a_latin1_server_and_clean_keeps_it(
        workspace: Workspace, latin1_server: MariaDBServer) -> None:
    server = latin1_server
    database = f"cs_{uuid.uuid4().hex[:10]}"
    server.sql(f"DROP DATABASE IF EXISTS `{database}`; CREATE DATABASE `{database}` "
               "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    try:
        server.sql(SCHEMA, database)
        before = _dump(server, database)
        assert "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci" in before
        password = workspace.secret_file("my.password", server.password + "\n")
        workspace.add_agency("records")
        workspace.add_source("records", "db", "mysql", database=database, host="127.0.0.1",
                             port=server.port, user=DB_TEST_USER, password_file=str(password))
        config = load_config(workspace.write())
        agency = config.agency("records")
        rt = Runtime.create(config)
        try:
            init_repository(rt, agency)
            assert run_backup(rt, agency, agency.source("db")).result == "success"
            # A drill's scratch database gets the same character set.
            drill = drill_source(rt, agency, agency.source("db"))
            assert drill.verdict == "pass", drill.reasons
            [entry] = json.loads(Path(drill.report.path).read_text())["report"]["databases"]
            assert entry["charset"] == "utf8mb4/utf8mb4_unicode_ci"
            # The bad day: the database is gone; the server would create it as latin1.
            server.drop_database(database)
            restored = restore_database(rt, agency, "db", into=database)
            assert restored.created
            after_restore = _dump(server, database)
            restored_charset = _charset(server, database)
            # A table made after the restore takes the database's default: Chinese fits.
            server.sql("CREATE TABLE later (id INT PRIMARY KEY, note VARCHAR(32)); "
                       "INSERT INTO later VALUES (1, '灾难恢复')", database)
            assert server.query("SELECT note FROM later", database) == "灾难恢复"
            assert server.query("SELECT TABLE_COLLATION FROM information_schema.TABLES WHERE "
                                f"TABLE_SCHEMA = '{database}' AND TABLE_NAME = 'later'"
                                ) == "utf8mb4_unicode_ci"
            # In place with --clean: the existing database's own collation is kept.
            server.sql(f"ALTER DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
            restore_database(rt, agency, "db", into=database, overwrite=True, clean=True)
        finally:
            rt.close()
        [snapshot] = local_snapshots(workspace.state_dir, "records",
                                     Path(workspace.agency("records")["password_file"]))
        assert {"charset=utf8mb4", "collation=utf8mb4_unicode_ci"} <= set(snapshot.tags)

        assert restored_charset == "utf8mb4/utf8mb4_unicode_ci"
        assert after_restore == before
        assert _charset(server, database) == "utf8mb4/utf8mb4_bin"
        assert server.query("SELECT COUNT(*) FROM information_schema.TABLES "
                            f"WHERE TABLE_SCHEMA = '{database}' AND TABLE_NAME = 'later'") == "0"
        assert server.query("SELECT GROUP_CONCAT(holder ORDER BY id) FROM permits",
                            database) == "王小明,Zoë,李四"
    finally:
        server.drop_database(database)
