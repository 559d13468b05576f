"""restore-db onto another MariaDB server (#17 item 7), with two real servers: a database with
foreign keys, Chinese text (utf8mb4), a view, a procedure, a function, a trigger and an event is
backed up from server A and restored onto server B (--target-host...); the dump of B equals the
dump of A. A restore that fails drops the database it created, never one that existed."""

# ruff: noqa: S608 - test SQL built from our own generated names

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from drbackup.errors import ExitCode
from tests.support.kits import printed_signer
from tests.support.servers import DB_TEST_USER, MariaDBServer
from tests.support.workspace import Workspace

SCHEMA = """
CREATE TABLE holders (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, city VARCHAR(32))
    ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE licences (
    id INT AUTO_INCREMENT PRIMARY KEY,
    holder INT NOT NULL,
    kind ENUM('shop', 'market', 'taxi') NOT NULL,
    fee DECIMAL(10, 2),
    note TEXT,
    FOREIGN KEY (holder) REFERENCES holders (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, licence INT, action VARCHAR(16))
    ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TRIGGER licences_audit AFTER INSERT ON licences FOR EACH ROW
    INSERT INTO audit (licence, action) VALUES (NEW.id, 'insert');
CREATE VIEW taxi_licences AS SELECT l.id, h.name FROM licences l JOIN holders h ON h.id = l.holder
    WHERE l.kind = 'taxi';
DELIMITER //
CREATE PROCEDURE add_licence(IN who INT, IN what VARCHAR(8))
BEGIN
    INSERT INTO licences (holder, kind, fee, note) VALUES (who, what, 12.5, '新许可证');
END //
CREATE FUNCTION fee_total() RETURNS DECIMAL(12, 2) READS SQL DATA
BEGIN
    RETURN (SELECT COALESCE(SUM(fee), 0) FROM licences);
END //
DELIMITER ;
CREATE EVENT purge_audit ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE
    DO DELETE FROM audit WHERE id < 0;
SET SESSION max_recursive_iterations = 100000;
INSERT INTO holders
WITH RECURSIVE seq (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 2000)
SELECT n, CONCAT('持证人-', n), ELT(n % 3 + 1, '北京', '上海', '广州') FROM seq;
INSERT INTO licences (holder, kind, fee, note)
WITH RECURSIVE seq (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 3000)
SELECT n % 2000 + 1, ELT(n % 3 + 1, 'shop', 'market', 'taxi'), n / 7, CONCAT('备注 ', n) FROM seq;
CALL add_licence(1, 'taxi');
"""


def full_dump(server: MariaDBServer, database: str) -> str:
    done = subprocess.run(
        ["mariadb-dump", f"--defaults-extra-file={server.defaults_file()}", "--skip-dump-date",
         "--routines", "--events", "--triggers", "--", database],
        capture_output=True, text=True, check=True)
    return done.stdout


def programs(server: MariaDBServer, database: str) -> dict[str, str]:
    literal = f"'{database}'"
    return {
        "routines": server.query(
            "SELECT GROUP_CONCAT(CONCAT(ROUTINE_TYPE, ' ', ROUTINE_NAME, ' ', "
            "MD5(ROUTINE_DEFINITION)) ORDER BY ROUTINE_NAME) FROM information_schema.ROUTINES "
            f"WHERE ROUTINE_SCHEMA = {literal}"),
        "triggers": server.query(
            "SELECT GROUP_CONCAT(CONCAT(TRIGGER_NAME, ' ', MD5(ACTION_STATEMENT))) "
            f"FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {literal}"),
        "events": server.query(
            "SELECT GROUP_CONCAT(CONCAT(EVENT_NAME, ' ', STATUS, ' ', MD5(EVENT_DEFINITION))) "
            f"FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {literal}"),
        "fee_total": server.query("SELECT fee_total()", database),
    }


def schemata(server: MariaDBServer) -> set[str]:
    return set(server.query("SELECT schema_name FROM information_schema.schemata").split())


def test_restore_onto_another_mariadb_server(
        workspace: Workspace, mariadb_server: MariaDBServer,
        mariadb_server_b: MariaDBServer) -> None:
    a, b = mariadb_server, mariadb_server_b
    tag = uuid.uuid4().hex[:8]
    name = f"licences_{tag}"
    weak = f"weak_{tag}"
    a.sql(f"CREATE DATABASE `{name}`")
    a.sql(SCHEMA, name)
    want_dump, want_programs = full_dump(a, name), programs(a, name)
    assert "持证人-7" in want_dump and "CREATE DEFINER" in want_dump

    workspace.add_agency("records")
    a_password = workspace.secret_file("a.password", a.password + "\n")
    b_password = workspace.secret_file("b.password", b.password + "\n")
    weak_password = workspace.secret_file("weak.password", f"w-{tag}\n")
    workspace.add_source("records", "db", "mysql", database=name, host="127.0.0.1",
                         port=a.port, user=DB_TEST_USER, password_file=str(a_password))
    workspace.config["restore_targets"] = [
        {"name": "weak", "kind": "mysql", "host": "127.0.0.1", "port": b.port, "user": weak,
         "password_file": str(weak_password)}]
    workspace.cli("repo", "init", check=True)
    workspace.cli("backup", "--agency", "records", check=True)
    restore = ["restore-db", "--agency", "records", "--source", "db", "--yes"]

    # A user who may create tables but not triggers: the replay fails midway and the database
    # the restore created is dropped again; one that existed before stays.
    b.sql(f"CREATE USER '{weak}'@'%' IDENTIFIED BY 'w-{tag}'; GRANT SELECT, INSERT, CREATE, "
          f"DROP, ALTER, INDEX, REFERENCES, CREATE VIEW, LOCK TABLES ON *.* TO '{weak}'@'%';")
    failed = workspace.cli(*restore, "--target", "weak")
    assert failed.returncode == ExitCode.DUMP_FAILED, failed.stderr
    assert "was dropped again" in failed.stderr and name not in schemata(b)
    b.sql(f"CREATE DATABASE `kept_{tag}`")
    failed = workspace.cli(*restore, "--target", "weak", "--into", f"kept_{tag}")
    assert failed.returncode == ExitCode.DUMP_FAILED, failed.stderr
    assert "dropped" not in failed.stderr and f"kept_{tag}" in schemata(b)

    # The full restore onto B, named on the command line (the password only in a file), as
    # --all-databases (#17 item 8): every database the source's snapshots hold, here one.
    done = workspace.cli(*restore, "--all-databases", "--target-host", "127.0.0.1",
                         "--target-port", str(b.port), "--target-user", DB_TEST_USER,
                         "--target-password-file", str(b_password), check=True)
    server = f"{DB_TEST_USER}@127.0.0.1:{b.port}"
    assert f"database {name}: restored into {name} on {server} (created)" in done.stdout
    assert f"restored 1 of 1 database(s) of records/db on {server}" in done.stdout
    assert full_dump(b, name) == want_dump
    assert programs(b, name) == want_programs
    assert b.password.encode() not in (workspace.state_dir / "state.db").read_bytes()


@pytest.mark.slow
def test_a_host_opened_from_the_recovery_kit_restores_onto_the_standby(
        workspace: Workspace, tmp_path: Path, mariadb_server: MariaDBServer,
        mariadb_server_b: MariaDBServer) -> None:
    """The kit carries the database source and the restore target with its password: a fresh
    host with only the kit and the identity key runs restore-db --target onto B."""
    a, b = mariadb_server, mariadb_server_b
    name = f"kit_{uuid.uuid4().hex[:8]}"
    a.sql(f"CREATE DATABASE `{name}`")
    a.sql(SCHEMA, name)
    want = full_dump(a, name)
    workspace.add_agency("records")
    workspace.add_source("records", "db", "mysql", database=name, host="127.0.0.1",
                         port=a.port, user=DB_TEST_USER, password_file=str(
                             workspace.secret_file("a.password", a.password + "\n")))
    workspace.config["restore_targets"] = [
        {"name": "standby", "kind": "mysql", "host": "127.0.0.1", "port": b.port,
         "user": DB_TEST_USER,
         "password_file": str(workspace.secret_file("b.password", b.password + "\n"))}]
    workspace.cli("repo", "init", check=True)
    workspace.cli("backup", "--agency", "records", check=True)
    keys, kits, opened = tmp_path / "keys", tmp_path / "kits", tmp_path / "opened"
    workspace.cli("recovery-kit", "keygen", "--out", str(keys / "identity"), check=True)
    workspace.cli("recovery-kit", "create", "--recipient", str(keys / "identity.pub"),
                  "--out", str(kits), check=True)
    workspace.cli("recovery-kit", "open", "--identity", str(keys / "identity"), "--kit",
                  str(kits / "drbackup-recovery-kit-all.kit"), "--out", str(opened),
                  "--signer-fingerprint",
                  printed_signer(kits / "drbackup-recovery-kit-all.txt"), check=True)
    config = (opened / "drbackup.toml").read_text()
    assert "[[restore_targets]]" in config and a.password not in config
    carried = opened / "db-passwords" / "standby.password"
    assert b.password not in config and carried.read_text() == b.password + "\n"
    assert carried.stat().st_mode & 0o777 == 0o600
    env = {**workspace.env(), "DRBACKUP_CONFIG": str(opened / "drbackup.toml")}
    done = subprocess.run(
        [sys.executable, "-m", "drbackup", "restore-db", "--agency", "records", "--source", "db",
         "--target", "standby", "--yes"], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert f"into {name} on {DB_TEST_USER}@127.0.0.1:{b.port} (created)" in done.stdout
    assert full_dump(b, name) == want
