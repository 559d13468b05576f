"""MySQL/MariaDB sources against a real throwaway MariaDB: a round trip keeps every row, a stored
procedure and a trigger; credentials travel in a 0600 defaults file, never in argv; a missing
database and a dump killed midway make no snapshot."""

# ruff: noqa: S608 - test SQL built from our own generated names

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from drbackup.errors import ExitCode
from tests.support.dbcheck import all_cmdlines, local_snapshots, runs, wait_until
from tests.support.servers import DB_TEST_USER, MariaDBServer
from tests.support.workspace import Workspace

SCHEMA = """
CREATE TABLE items (
    id INT PRIMARY KEY,
    name VARCHAR(64) NOT NULL,
    payload VARBINARY(32),
    doc JSON,
    price DECIMAL(12, 2)
) ENGINE=InnoDB;
CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, item_id INT, action VARCHAR(16))
    ENGINE=InnoDB;
CREATE TRIGGER items_audit AFTER INSERT ON items FOR EACH ROW
    INSERT INTO audit (item_id, action) VALUES (NEW.id, 'insert');
DELIMITER //
CREATE PROCEDURE add_item(IN new_id INT, IN new_name VARCHAR(64))
BEGIN
    INSERT INTO items (id, name, payload, doc, price) VALUES (new_id, new_name, NULL, NULL, 1.5);
END //
DELIMITER ;
SET SESSION max_recursive_iterations = 100000;
INSERT INTO items
WITH RECURSIVE seq (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 20000)
SELECT n, CONCAT('item-', n), UNHEX(MD5(n)), JSON_OBJECT('n', n, 'even', n % 2 = 0),
       (n % 1000) / 7 FROM seq;
"""


def fingerprint(server: MariaDBServer, database: str) -> dict[str, str]:
    found = {}
    for table in ("items", "audit"):
        found[table] = server.query(
            "SET SESSION group_concat_max_len = 1073741824; "
            f"SELECT CONCAT(COUNT(*), ':', MD5(GROUP_CONCAT(CONCAT_WS(',', "
            f"{_columns(server, database, table)}) ORDER BY id SEPARATOR '|'))) "
            f"FROM {table}", database)
    found["routines"] = server.query(
        "SELECT GROUP_CONCAT(ROUTINE_NAME) FROM information_schema.ROUTINES "
        f"WHERE ROUTINE_SCHEMA = '{database}'")
    found["triggers"] = server.query(
        "SELECT GROUP_CONCAT(TRIGGER_NAME) FROM information_schema.TRIGGERS "
        f"WHERE TRIGGER_SCHEMA = '{database}'")
    return found


def _columns(server: MariaDBServer, database: str, table: str) -> str:
    names = server.query(
        "SELECT GROUP_CONCAT(CONCAT('COALESCE(HEX(`', COLUMN_NAME, '`), \\'NULL\\')') "
        "ORDER BY ORDINAL_POSITION) FROM information_schema.COLUMNS "
        f"WHERE TABLE_SCHEMA = '{database}' AND TABLE_NAME = '{table}'")
    return names


def _mysql_agency(workspace: Workspace, server: MariaDBServer, database: str) -> None:
    """Agency "records" with a mysql source "db" on `server`, its repository initialised."""
    workspace.add_agency("records")
    password_file = workspace.secret_file("my.password", server.password + "\n")
    workspace.add_source("records", "db", "mysql", database=database, host="127.0.0.1",
                         port=server.port, user=DB_TEST_USER, password_file=str(password_file))
    workspace.cli("repo", "init", check=True)


@pytest.fixture
def my_database(mariadb_server: MariaDBServer) -> Iterator[str]:
    name = mariadb_server.create_database("src")
    yield name
    mariadb_server.drop_database(name)


def test_round_trip_keeps_rows_procedure_and_trigger_and_no_password_in_argv(
        workspace: Workspace, mariadb_server: MariaDBServer, my_database: str) -> None:
    mariadb_server.sql(SCHEMA, my_database)
    before = fingerprint(mariadb_server, my_database)
    assert before["items"].startswith("20000:") and before["audit"].startswith("20000:")
    assert before["routines"] == "add_item" and before["triggers"] == "items_audit"
    _mysql_agency(workspace, mariadb_server, my_database)

    # A session holds a write lock so the dump waits while every argv is sampled.
    locker = subprocess.Popen(
        ["mariadb", f"--defaults-extra-file={mariadb_server.defaults_file()}", my_database],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    assert locker.stdin is not None
    locker.stdin.write("LOCK TABLES items WRITE; SELECT SLEEP(600);\n")
    locker.stdin.flush()
    wait_until(lambda: "items" in mariadb_server.query(
        "SHOW OPEN TABLES WHERE In_use > 0"), what="the lock")
    workspace.write()
    backup = subprocess.Popen(
        [sys.executable, "-m", "drbackup", "--config", str(workspace.config_path),
         "--log-format", "json", "--debug", "backup", "--agency", "records"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=workspace.env())
    try:
        wait_until(lambda: "Waiting for table metadata lock" in mariadb_server.query(
            "SELECT GROUP_CONCAT(STATE) FROM information_schema.PROCESSLIST"),
            what="the dump waiting for the lock")
        samples = [all_cmdlines() for _ in range(5)]
        dumps = [line for sample in samples for line in sample if "mariadb-dump" in line]
        assert dumps and all(" --defaults-extra-file=" in line for line in dumps)
        assert not any(mariadb_server.password in line for s in samples for line in s)
    finally:
        locker.kill()
        locker.wait()
    stdout, stderr = backup.communicate(timeout=120)
    assert backup.returncode == 0, stderr
    assert mariadb_server.password not in stdout + stderr
    [snapshot] = local_snapshots(workspace.state_dir, "records", workspace.root / "secrets" /
                                 "records.password")
    assert {"kind=mysql", f"database={my_database}", "format=sql"} <= set(snapshot.tags)
    [run] = runs(workspace.state_dir, agency="records", source="db")
    assert run.result == "success" and run.details["dump_bytes"] > 100_000

    mariadb_server.drop_database(my_database)
    restored = workspace.cli("restore-db", "--agency", "records", "--source", "db",
                             "--into", my_database, "--yes", check=True)
    assert fingerprint(mariadb_server, my_database) == before
    # The test user holds ALL ON *.* (SUPER included): said, once (#14).
    assert restored.stderr.count("connects as a user with SUPER or SET USER") == 1, \
        restored.stderr
    # The procedure and the trigger work after the restore.
    mariadb_server.sql("CALL add_item(20001, 'restored')", my_database)
    assert mariadb_server.query(
        "SELECT action FROM audit WHERE item_id = 20001", my_database) == "insert"

    refused = workspace.cli("restore-db", "--agency", "records", "--source", "db",
                            "--into", my_database, "--yes")
    assert refused.returncode == ExitCode.TARGET_REFUSED
    state = (workspace.state_dir / "state.db").read_bytes()
    assert mariadb_server.password.encode() not in state
    assert json.dumps(mariadb_server.password) not in stdout


def test_missing_database_fails_without_snapshot(workspace: Workspace,
                                                 mariadb_server: MariaDBServer) -> None:
    _mysql_agency(workspace, mariadb_server, "no_such_db")
    result = workspace.cli("backup", "--agency", "records")
    assert result.returncode == ExitCode.DUMP_FAILED, result.stderr
    assert local_snapshots(workspace.state_dir, "records",
                           Path(workspace.agency("records")["password_file"])) == []
    [run] = runs(workspace.state_dir, agency="records", source="db")
    assert run.result == "failed" and "Unknown database" in run.details["stderr_tail"]


def test_a_password_in_the_restore_target_is_refused_for_mariadb_too(
        workspace: Workspace, mariadb_server: MariaDBServer) -> None:
    """issue 17 item 5 for MariaDB/MySQL: `--into mysql://user:s3cret@host/db` is refused in one
    line before anything runs or is recorded (the check is the config's dsn check)."""
    _mysql_agency(workspace, mariadb_server, "no_such_db")
    target = f"mysql://{DB_TEST_USER}:s3cret@127.0.0.1:{mariadb_server.port}/restored"
    refused = workspace.cli("restore-db", "--agency", "records", "--source", "db",
                            "--into", target, "--yes")
    assert refused.returncode == ExitCode.USAGE, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "password" in lines[0], refused.stderr
    assert "s3cret" not in refused.stdout + refused.stderr
    assert runs(workspace.state_dir, agency="records", job="restore-db") == []


def test_dump_killed_midway_makes_no_snapshot(workspace: Workspace,
                                              mariadb_server: MariaDBServer,
                                              my_database: str) -> None:
    """The dump has written the first table and waits on a locked second one when its server
    connection is killed (as when the server stops mid-dump): no snapshot, a failed run naming
    the server's error, and no password anywhere."""
    mariadb_server.sql(
        "CREATE TABLE a_first (id INT PRIMARY KEY, v VARCHAR(64)) ENGINE=InnoDB; "
        "SET SESSION max_recursive_iterations = 100000; "
        "INSERT INTO a_first WITH RECURSIVE seq (n) AS "
        "(SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 20000) "
        "SELECT n, MD5(n) FROM seq; "
        "CREATE TABLE b_locked (id INT PRIMARY KEY) ENGINE=InnoDB; "
        "INSERT INTO b_locked VALUES (1)", my_database)
    _mysql_agency(workspace, mariadb_server, my_database)
    workspace.write()
    locker = subprocess.Popen(
        ["mariadb", f"--defaults-extra-file={mariadb_server.defaults_file()}", my_database],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    assert locker.stdin is not None
    waiting = ("SELECT GROUP_CONCAT(ID) FROM information_schema.PROCESSLIST "
               f"WHERE DB = '{my_database}' AND STATE = 'Waiting for table metadata lock'")
    try:
        locker.stdin.write("LOCK TABLES b_locked WRITE; SELECT SLEEP(600);\n")
        locker.stdin.flush()
        wait_until(lambda: "b_locked" in mariadb_server.query(
            "SHOW OPEN TABLES WHERE In_use > 0"), what="the lock")
        backup = subprocess.Popen(
            [sys.executable, "-m", "drbackup", "--config", str(workspace.config_path),
             "--log-format", "json", "backup", "--agency", "records"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=workspace.env())
        try:
            wait_until(lambda: mariadb_server.query(waiting) not in ("", "NULL"),
                       what="the dump waiting for the lock")
            for connection in mariadb_server.query(waiting).split(","):
                mariadb_server.sql(f"KILL {int(connection)}")
            stdout, stderr = backup.communicate(timeout=120)
        finally:
            backup.kill()
    finally:
        locker.kill()
        locker.wait()
    assert backup.returncode == ExitCode.DUMP_FAILED, stderr
    assert "no snapshot was made" in stderr
    assert local_snapshots(workspace.state_dir, "records",
                           Path(workspace.agency("records")["password_file"])) == []
    [run] = runs(workspace.state_dir, agency="records", source="db")
    assert run.result == "failed"
    # It died on the second table, so the first one's rows had already gone down the pipe.
    assert "FROM `b_locked`': Lost connection" in run.details["stderr_tail"], run.details
    assert mariadb_server.password not in stdout + stderr
    assert mariadb_server.password.encode() not in (workspace.state_dir / "state.db").read_bytes()
