"""A MariaDB dump is the agency's: replaying it (a drill, on the agency's server or in a local
instance, and `restore-db`) must not hand it drbackup's privileges on either end (issue #14,
hole 3). Each hostile dump reaches the repository the way a compromised agency server serves
it: the source's dump program is a script printing the dump. The attacks: `LOAD DATA LOCAL
INFILE` of another agency's password, LOAD_FILE, INTO OUTFILE/DUMPFILE, INSTALL SONAME/PLUGIN,
`SET GLOBAL general_log_file` pointed into another agency's repository (a bogus lock), CREATE
USER/GRANT, objects with `DEFINER=root`, and a table with `DATA DIRECTORY` elsewhere. Outcome
checked: no secret in any table or report, no file written, no user created, no object defined
as root, and no drill PASS with the attack having worked; a real mariadb-dump with views,
triggers, routines and events still drills and restores."""

# ruff: noqa: S608 - test SQL built from our own generated names

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drbackup.verify.leftovers import processes_under
from tests.support.servers import DB_TEST_USER, MariaDBServer
from tests.support.workspace import Workspace

PREFIX = ("CREATE TABLE licences (id INT PRIMARY KEY, holder TEXT);\n"
          "INSERT INTO licences VALUES (1, 'a'), (2, 'b'), (3, 'c');\n"
          "CREATE TABLE loot (x LONGTEXT);\n"
          "-- " + "padding " * 140 + "\n")
LICENCES_HOLD = "SELECT COUNT(*) = 3 FROM licences"
NO_ROOT_DEFINER = (
    "SELECT (SELECT COUNT(*) FROM information_schema.views WHERE definer LIKE 'root@%') "
    "+ (SELECT COUNT(*) FROM information_schema.routines WHERE definer LIKE 'root@%') "
    "+ (SELECT COUNT(*) FROM information_schema.triggers WHERE definer LIKE 'root@%') "
    "+ (SELECT COUNT(*) FROM information_schema.events WHERE definer LIKE 'root@%') = 0")
DEFINER_ROOT = (
    "CREATE DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW whoami AS "
    "SELECT CURRENT_USER() AS u;\n"
    "/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER licences_ai "
    "AFTER INSERT ON licences FOR EACH ROW INSERT INTO loot VALUES (CURRENT_USER()) */;\n"
    "DELIMITER ;;\n"
    "CREATE DEFINER=root@localhost PROCEDURE grab() SQL SECURITY DEFINER "
    "BEGIN SELECT CURRENT_USER(); END ;;\n"
    "DELIMITER ;\n")


@pytest.fixture
def short_state_dir(workspace: Workspace) -> Iterator[Path]:
    """A state_dir with a short path (the drill instance's unix socket lives under it)."""
    state = Path(tempfile.mkdtemp(prefix="drb-my-"))
    workspace.config["daemon"]["state_dir"] = str(state)
    try:
        yield state
    finally:
        for pid in processes_under(state):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def agency_db(mariadb_server: MariaDBServer) -> Iterator[str]:
    name = mariadb_server.create_database("agency")
    mariadb_server.sql("CREATE TABLE stolen (x LONGTEXT)", name)
    yield name
    mariadb_server.drop_database(name)


def _victim(workspace: Workspace) -> tuple[str, Path]:
    """Agency "records" (another agency) with its local repository initialised: its password
    and the repository's locks directory."""
    workspace.add_agency("records")
    workspace.add_directory_source("records", "docs", [workspace.root / "secrets"])
    workspace.cli("repo", "init", "--agency", "records", check=True)
    locks = workspace.state_dir / "repos" / "records" / "locks"
    assert locks.is_dir()
    return workspace.passwords["records"], locks


def _hostile_source(workspace: Workspace, server: MariaDBServer, source_id: str, sql: str,
                    **extra: Any) -> None:
    """A mysql source of agency "planning" whose server serves `sql` as its dump."""
    dump = workspace.root / f"{source_id}.sql"
    dump.write_text(PREFIX + sql)
    script = workspace.root / f"{source_id}-dump.sh"
    script.write_text(f"#!/bin/sh\nexec cat '{dump}'\n")
    script.chmod(0o755)
    password = workspace.secret_file("my.password", server.password + "\n")
    settings: dict[str, Any] = {"database": source_id, "host": "127.0.0.1",
                                "port": server.port, "user": DB_TEST_USER,
                                "password_file": str(password), "dump_binary": str(script),
                                "assert": [LICENCES_HOLD]}
    settings.update(extra)
    workspace.add_source("planning", source_id, "mysql", **settings)


def _backup(workspace: Workspace) -> None:
    workspace.cli("repo", "init", "--agency", "planning", check=True)
    workspace.cli("backup", "--agency", "planning", check=True)


def _drills(workspace: Workspace) -> dict[str, dict[str, Any]]:
    _backup(workspace)
    result = workspace.cli("verify", "--agency", "planning", "--json", "--kind", "db")
    assert "Traceback" not in result.stderr
    assert result.stdout.strip(), result.stderr
    outcome = json.loads(result.stdout)
    return {d["source"]: d for d in outcome["drills"]}


def _report_text(drill: dict[str, Any]) -> str:
    return Path(drill["report"]).read_text()


def _loot_rows(drill: dict[str, Any]) -> int:
    report = json.loads(_report_text(drill))["report"]
    return sum(t["rows"] for d in report["databases"] for t in d.get("tables", [])
               if t["table"] == "loot")


def test_local_instance_drill_gives_the_dump_no_host_file_plugin_log_or_root(
        workspace: Workspace, short_state_dir: Path, mariadb_server: MariaDBServer) -> None:
    secret, locks = _victim(workspace)
    lock_name = secrets.token_hex(32)
    workspace.add_agency("planning")
    instance = {"drill_target": "local-instance"}
    secret_file = workspace.root / "secrets" / "records.password"
    _hostile_source(workspace, mariadb_server, "infile",
                    f"LOAD DATA LOCAL INFILE '{secret_file}' INTO TABLE loot;\n", **instance)
    _hostile_source(workspace, mariadb_server, "soname",
                    "INSTALL SONAME 'ha_federatedx';\n", **instance)
    _hostile_source(workspace, mariadb_server, "plugin",
                    "INSTALL PLUGIN federated SONAME 'ha_federated.so';\n", **instance)
    _hostile_source(workspace, mariadb_server, "genlog",
                    f"SET GLOBAL general_log_file = '{locks / lock_name}';\n"
                    "SET GLOBAL general_log = 1;\nSELECT 1;\n", **instance)
    _hostile_source(workspace, mariadb_server, "grant",
                    "CREATE USER 'evil'@'localhost' IDENTIFIED BY 'x';\n"
                    "GRANT ALL PRIVILEGES ON *.* TO 'evil'@'localhost' WITH GRANT OPTION;\n",
                    **instance)
    _hostile_source(workspace, mariadb_server, "definer", DEFINER_ROOT + "INSERT INTO "
                    "licences VALUES (4, 'd');\nDELETE FROM licences WHERE id = 4;\n",
                    **{**instance, "assert": [LICENCES_HOLD, NO_ROOT_DEFINER,
                                              "SELECT u NOT LIKE 'root@%' FROM whoami",
                                              "SELECT COUNT(*) = 1 FROM loot "
                                              "WHERE x NOT LIKE 'root@%'"]})
    elsewhere = Path(tempfile.mkdtemp(prefix="drb-far-"))
    _hostile_source(workspace, mariadb_server, "datadir",
                    f"CREATE TABLE far (x INT) DATA DIRECTORY = '{elsewhere}';\n"
                    "INSERT INTO far VALUES (1);\n", **instance)
    try:
        drills = _drills(workspace)
        # Symbolic links off: the table stays in the instance's own data directory.
        assert list(elsewhere.iterdir()) == []
    finally:
        shutil.rmtree(elsewhere, ignore_errors=True)
    assert drills["datadir"]["verdict"] == "pass", drills["datadir"]

    for name in ("infile", "soname", "plugin", "genlog", "grant"):
        assert drills[name]["verdict"] == "fail", (name, drills[name])
        assert any("does not restore" in r for r in drills[name]["reasons"]), drills[name]
    assert _loot_rows(drills["infile"]) == 0
    assert all(secret not in _report_text(d) for d in drills.values())
    assert list(locks.iterdir()) == []
    # The objects the dump defined as root run as the replay user: the drill still passes.
    assert drills["definer"]["verdict"] == "pass", drills["definer"]
    assert list((short_state_dir / "scratch").iterdir()) == []
    assert processes_under(short_state_dir) == []


def test_same_server_drill_replays_as_a_user_of_the_scratch_database_only(
        workspace: Workspace, mariadb_server: MariaDBServer, agency_db: str,
        tmp_path: Path) -> None:
    secret, locks = _victim(workspace)
    secret_file = workspace.root / "secrets" / "records.password"
    outfile = tmp_path / "outfile"
    dumpfile = tmp_path / "dumpfile"
    evil = f"evil_{secrets.token_hex(4)}"
    lock_name = secrets.token_hex(32)
    steal = f"INSERT INTO `{agency_db}`.stolen SELECT x FROM loot;\n"
    workspace.add_agency("planning")
    _hostile_source(workspace, mariadb_server, "infile",
                    f"LOAD DATA LOCAL INFILE '{secret_file}' INTO TABLE loot;\n" + steal)
    _hostile_source(workspace, mariadb_server, "loadfile",
                    f"INSERT INTO loot SELECT LOAD_FILE('{secret_file}');\n" + steal)
    _hostile_source(workspace, mariadb_server, "outfile",
                    f"SELECT 'x' INTO OUTFILE '{outfile}';\n"
                    f"SELECT 'x' INTO DUMPFILE '{dumpfile}';\n")
    _hostile_source(workspace, mariadb_server, "genlog",
                    f"SET GLOBAL general_log_file = '{locks / lock_name}';\n"
                    "SET GLOBAL general_log = 1;\nSELECT 1;\n")
    _hostile_source(workspace, mariadb_server, "grant",
                    f"CREATE USER '{evil}'@'%' IDENTIFIED BY 'x';\n"
                    f"GRANT ALL PRIVILEGES ON *.* TO '{evil}'@'%' WITH GRANT OPTION;\n")
    _hostile_source(workspace, mariadb_server, "definer", DEFINER_ROOT,
                    **{"assert": [LICENCES_HOLD, NO_ROOT_DEFINER,
                                  "SELECT u NOT LIKE 'root@%' FROM whoami"]})
    try:
        drills = _drills(workspace)
    finally:
        mariadb_server.sql("SET GLOBAL general_log = 0")
    for name in ("infile", "loadfile", "outfile", "genlog", "grant"):
        assert drills[name]["verdict"] == "fail", (name, drills[name])
    assert drills["definer"]["verdict"] == "pass", drills["definer"]
    assert mariadb_server.query("SELECT COUNT(*) FROM stolen WHERE x IS NOT NULL",
                                agency_db) == "0"
    assert all(secret not in _report_text(d) for d in drills.values())
    assert not outfile.exists() and not dumpfile.exists()
    assert list(locks.iterdir()) == []
    users = mariadb_server.query("SELECT user FROM mysql.user").split()
    assert evil not in users
    assert not [u for u in users if u.startswith("drbackup_drill_")], users
    assert not [d for d in mariadb_server.query("SHOW DATABASES").split()
                if d.startswith("drbackup_drill_")]


def test_restore_db_client_reads_no_host_file_and_defines_nothing_as_root(
        workspace: Workspace, mariadb_server: MariaDBServer) -> None:
    secret, _ = _victim(workspace)
    secret_file = workspace.root / "secrets" / "records.password"
    workspace.add_agency("planning")
    _hostile_source(workspace, mariadb_server, "infile",
                    f"LOAD DATA LOCAL INFILE '{secret_file}' INTO TABLE loot;\n")
    _hostile_source(workspace, mariadb_server, "definer", DEFINER_ROOT)
    _backup(workspace)
    into = [f"restored_{secrets.token_hex(4)}" for _ in range(2)]
    try:
        refused = workspace.cli("restore-db", "--agency", "planning", "--source", "infile",
                                "--into", into[0], "--yes")
        assert refused.returncode != 0
        assert "Traceback" not in refused.stderr and secret not in refused.stderr
        # The database the failed restore created is dropped again (#17 item 7): nothing of
        # the replay, loaded or not, stays behind.
        assert "was dropped again" in refused.stderr
        assert mariadb_server.query("SELECT COUNT(*) FROM information_schema.schemata WHERE "
                                    f"schema_name = '{into[0]}'") == "0"

        workspace.cli("restore-db", "--agency", "planning", "--source", "definer",
                      "--into", into[1], "--yes", check=True)
        definers = mariadb_server.query(
            "SELECT definer FROM information_schema.views WHERE table_schema = DATABASE() "
            "UNION ALL SELECT definer FROM information_schema.routines WHERE routine_schema "
            "= DATABASE() UNION ALL SELECT definer FROM information_schema.triggers WHERE "
            "trigger_schema = DATABASE()", into[1]).split()
        assert definers == [f"{DB_TEST_USER}@%"] * 3
    finally:
        for name in into:
            mariadb_server.drop_database(name)


REALISTIC = """
CREATE TABLE licences (id INT PRIMARY KEY, holder TEXT, issued INT DEFAULT 0);
CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, licence INT);
INSERT INTO licences (id, holder) VALUES (1, 'it''s DEFINER=`root`@`localhost`'), (2, 'b'),
    (3, 'c');
CREATE DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW v_licences AS
    SELECT id, holder FROM licences;
CREATE DEFINER=`root`@`localhost` TRIGGER licences_ai AFTER INSERT ON licences FOR EACH ROW
    INSERT INTO audit (licence) VALUES (NEW.id);
CREATE DEFINER=`root`@`localhost` FUNCTION licence_count() RETURNS INT READS SQL DATA
    RETURN (SELECT COUNT(*) FROM licences);
CREATE DEFINER=`root`@`localhost` PROCEDURE issue(IN which INT)
    UPDATE licences SET issued = issued + 1 WHERE id = which;
CREATE DEFINER=`root`@`localhost` EVENT nightly ON SCHEDULE EVERY 1 DAY DISABLE
    DO DELETE FROM audit;
"""


def test_real_dump_with_views_triggers_routines_events_drills_and_restores(
        workspace: Workspace, short_state_dir: Path, mariadb_server: MariaDBServer) -> None:
    database = mariadb_server.create_database("licences")
    restored = f"restored_{secrets.token_hex(4)}"
    try:
        mariadb_server.sql(REALISTIC, database)
        password = workspace.secret_file("my.password", mariadb_server.password + "\n")
        workspace.add_agency("planning")
        common = {"database": database, "host": "127.0.0.1", "port": mariadb_server.port,
                  "user": DB_TEST_USER, "password_file": str(password)}
        checks = [LICENCES_HOLD, NO_ROOT_DEFINER, "SELECT licence_count() = 3",
                  "SELECT COUNT(*) = 3 FROM v_licences",
                  "SELECT COUNT(*) = 1 FROM information_schema.events "
                  "WHERE event_schema = DATABASE()",
                  "SELECT COUNT(*) = 1 FROM information_schema.triggers "
                  "WHERE trigger_schema = DATABASE()",
                  "SELECT holder = 'it''s DEFINER=`root`@`localhost`' FROM licences "
                  "WHERE id = 1"]
        workspace.add_source("planning", "local", "mysql", **common,
                             **{"drill_target": "local-instance", "assert": checks})
        workspace.add_source("planning", "same", "mysql", **common, **{"assert": checks})
        drills = _drills(workspace)
        assert drills["local"]["verdict"] == "pass", drills["local"]
        assert drills["same"]["verdict"] == "pass", drills["same"]

        workspace.cli("restore-db", "--agency", "planning", "--source", "same",
                      "--into", restored, "--yes", check=True)
        mariadb_server.sql("CALL issue(2); INSERT INTO licences (id, holder) VALUES (4, 'd')",
                           restored)
        assert mariadb_server.query("SELECT CONCAT(licence_count(), ':', "
                                    "(SELECT issued FROM licences WHERE id = 2), ':', "
                                    "(SELECT COUNT(*) FROM audit))", restored) == "4:1:1"
        assert mariadb_server.query(
            "SELECT holder FROM licences WHERE id = 1", restored) == \
            "it's DEFINER=`root`@`localhost`"
        assert mariadb_server.query(
            "SELECT COUNT(*) FROM information_schema.routines WHERE routine_schema = "
            "DATABASE() AND definer LIKE 'root@%'", restored) == "0"
    finally:
        mariadb_server.drop_database(database)
        mariadb_server.drop_database(restored)


HIDDEN_DEFINERS = (
    # Under NO_BACKSLASH_ESCAPES 'a\' ends the string; the rewriter, reading backslash escapes,
    # takes the CREATE for string data.
    "SET sql_mode = 'NO_BACKSLASH_ESCAPES';\n"
    "INSERT INTO loot VALUES ('a\\');CREATE DEFINER=`root`@`localhost` SQL SECURITY DEFINER "
    "VIEW nbe_view AS SELECT CURRENT_USER() AS u;-- ');\n"
    "SET sql_mode = DEFAULT;\n"
    # SQL built at run time: no lexer sees the clause.
    "PREPARE s FROM 'CREATE DEFINER=`root`@`localhost` PROCEDURE prep_proc() "
    "SQL SECURITY DEFINER SELECT CURRENT_USER()';\n"
    "EXECUTE s;\n")


def test_restore_db_drops_objects_a_dump_hid_from_the_definer_rewrite_and_fails(
        workspace: Workspace, mariadb_server: MariaDBServer) -> None:
    """#14 hole 3, the rewrite's blind spots: a dump that switches to NO_BACKSLASH_ESCAPES, or
    builds its CREATE at run time, gets a root-defined view and procedure past the lexer when
    restore-db connects as a user who may name other definers. After the replay drbackup finds
    them (definer is not the replaying user), drops them and fails: nothing stays defined as
    root, and the restore is not reported good."""
    workspace.add_agency("planning")
    _hostile_source(workspace, mariadb_server, "hidden", HIDDEN_DEFINERS)
    _backup(workspace)
    into = f"restored_{secrets.token_hex(4)}"
    try:
        result = workspace.cli("restore-db", "--agency", "planning", "--source", "hidden",
                               "--into", into, "--yes")
        assert result.returncode == 17, result.stdout  # DUMP_FAILED
        assert "Traceback" not in result.stderr
        assert "defined 2 object(s) as another user despite the DEFINER rewrite" in result.stderr
        assert "view nbe_view as root@localhost" in result.stderr
        assert "procedure prep_proc as root@localhost" in result.stderr
        # Nothing stays defined as root: the objects were dropped, and with them the database
        # the failed restore had created (#17 item 7).
        assert "was dropped again" in result.stderr
        left = mariadb_server.query(
            "SELECT COUNT(*) FROM information_schema.views WHERE table_schema = "
            f"'{into}' UNION ALL SELECT COUNT(*) FROM information_schema.routines WHERE "
            f"routine_schema = '{into}' UNION ALL SELECT COUNT(*) FROM "
            f"information_schema.schemata WHERE schema_name = '{into}'").split()
        assert left == ["0", "0", "0"]
    finally:
        mariadb_server.drop_database(into)


def test_every_replay_starts_without_the_sql_modes_that_change_quoting(
        mariadb_server: MariaDBServer) -> None:
    """A server whose default sql_mode reads strings differently (ANSI_QUOTES,
    NO_BACKSLASH_ESCAPES, ORACLE...) would disagree with the rewrite from the first line; the
    replay's first statement removes exactly those flags and keeps the others."""
    from drbackup.sources.mysqlreplay import QUOTING_RESET

    modes = mariadb_server.query(
        "SET SESSION sql_mode = 'ORACLE,NO_BACKSLASH_ESCAPES,STRICT_TRANS_TABLES,ANSI';\n"
        + QUOTING_RESET.decode() + "SELECT @@SESSION.sql_mode;").split(",")
    assert "STRICT_TRANS_TABLES" in modes
    assert not {"NO_BACKSLASH_ESCAPES", "ANSI_QUOTES", "ANSI", "ORACLE"} & set(modes)
