"""Fuzz the MariaDB replay path with hostile dumps generated from a grammar: client commands
(`system`, `\\!`, `source`, `\\.`, `tee`, `\\T`, `pager`, `delimiter` games, `connect`, `use`
of another database) and dangerous statements (LOAD DATA [LOCAL], INTO OUTFILE/DUMPFILE,
LOAD_FILE, INSTALL SONAME/PLUGIN, SET GLOBAL, GRANT, CREATE USER, CREATE SERVER, FEDERATED
tables, DEFINER=root), each bare or inside comments, strings, versioned comments and
delimiter changes. Every dump is replayed the way a drill does it (a user of the scratch
database only, drbackup's hardened client) into the real test server. Invariants on every case:
no marker or outfile appears, the secret reaches no table and no error text, no user, grant,
server, plugin or global setting changes, no object is defined as root, and the agency's own
database is untouched -- whether the replay succeeds or fails. (`DATA DIRECTORY` is left out:
on the agency's own server it places files where that server may write, which the drill cannot
prevent; the drill's local instance ignores it, see test_mariadb_replay_attacks.py.)"""

# ruff: noqa: S608 - test SQL built from our own generated names

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest
from hypothesis import strategies as st

from drbackup.config.models import MysqlSource
from drbackup.sources import mysql as my
from drbackup.sources.base import DumpError
from tests.support.fuzz import fuzz_pair
from tests.support.servers import DB_TEST_USER, MariaDBServer

BATCH_BACKSLASH = "\\\\"
SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")


@dataclass
class Arena:
    server: MariaDBServer
    source: MysqlSource
    secret: str
    secret_file: Path
    markers: Path
    agency_db: str
    baseline: dict[str, str]


def _server_state(server: MariaDBServer) -> dict[str, str]:
    """What a replay must never change on the server (users, grants, servers, plugins, logs)."""
    return {
        "users": server.query("SELECT GROUP_CONCAT(CONCAT(user, '@', host) ORDER BY user, host) "
                              "FROM mysql.user WHERE user NOT LIKE 'drbackup\\_drill\\_%'"),
        "grants": server.query(f"SHOW GRANTS FOR '{DB_TEST_USER}'@'%'"),
        "servers": server.query("SELECT COUNT(*) FROM mysql.servers"),
        "plugins": server.query("SELECT GROUP_CONCAT(plugin_name ORDER BY plugin_name) "
                                "FROM information_schema.plugins WHERE plugin_status = 'ACTIVE'"),
        "globals": server.query("SELECT CONCAT_WS('|', @@general_log, @@general_log_file, "
                                "@@slow_query_log, @@slow_query_log_file, @@local_infile, "
                                "@@event_scheduler)"),
        "databases": server.query("SELECT GROUP_CONCAT(schema_name ORDER BY schema_name) FROM "
                                  "information_schema.schemata WHERE schema_name NOT LIKE "
                                  "'drbackup\\_drill\\_%'"),
    }


@pytest.fixture(scope="module")
def arena(mariadb_server: MariaDBServer) -> Iterator[Arena]:
    root = Path(tempfile.mkdtemp(prefix="drb-myfuzz-"))
    secret = "SECRET-" + secrets.token_hex(16)
    secret_file = root / "other-agency.password"
    secret_file.write_text(secret + "\n")
    markers = root / "markers"
    markers.mkdir()
    agency_db = mariadb_server.create_database("agency")
    mariadb_server.sql("CREATE TABLE stolen (x LONGTEXT); INSERT INTO stolen VALUES ('mine')",
                       agency_db)
    password = root / "my.password"
    password.write_text(mariadb_server.password + "\n")
    password.chmod(0o600)
    source = MysqlSource.model_validate({
        "id": "db", "kind": "mysql", "database": agency_db, "host": "127.0.0.1",
        "port": mariadb_server.port, "user": DB_TEST_USER, "password_file": str(password)})
    try:
        yield Arena(mariadb_server, source, secret, secret_file, markers, agency_db,
                    _server_state(mariadb_server))
    finally:
        mariadb_server.drop_database(agency_db)
        shutil.rmtree(root, ignore_errors=True)


# -- the grammar -----------------------------------------------------------------------------
# {secret}: the other agency's password file; {marker}: a fresh path in the markers directory;
# {agency}: the agency's own database; {evil}: a user name.

CLIENT_COMMANDS = [
    "system touch {marker}", "\\! touch {marker}", "source {secret}", "\\. {secret}",
    "tee {marker}", "\\T {marker}", "pager touch {marker}", "\\P touch {marker}",
    "connect {agency}", "use {agency}", "\\u {agency}", "use mysql", "\\r {agency}",
]
STATEMENTS = [
    "LOAD DATA LOCAL INFILE '{secret}' INTO TABLE loot",
    "LOAD DATA INFILE '{secret}' INTO TABLE loot",
    "LOAD XML LOCAL INFILE '{secret}' INTO TABLE loot",
    "INSERT INTO loot VALUES (LOAD_FILE('{secret}'))",
    "INSERT INTO `{agency}`.stolen VALUES (LOAD_FILE('{secret}'))",
    "INSERT INTO `{agency}`.stolen SELECT x FROM loot",
    "SELECT 'x' INTO OUTFILE '{marker}'",
    "SELECT 'x' INTO DUMPFILE '{marker}'",
    "INSTALL SONAME 'ha_federatedx'",
    "INSTALL PLUGIN federated SONAME 'ha_federated.so'",
    "SET GLOBAL general_log_file = '{marker}'", "SET GLOBAL general_log = 1",
    "SET GLOBAL slow_query_log_file = '{marker}'", "SET GLOBAL local_infile = 1",
    "SET GLOBAL event_scheduler = ON",
    "GRANT ALL PRIVILEGES ON *.* TO CURRENT_USER",
    "GRANT ALL PRIVILEGES ON `{agency}`.* TO CURRENT_USER",
    "CREATE USER '{evil}'@'%' IDENTIFIED BY 'x'",
    "GRANT ALL PRIVILEGES ON *.* TO '{evil}'@'%' IDENTIFIED BY 'x' WITH GRANT OPTION",
    "CREATE DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW v_{n} AS SELECT 1 AS a",
    "CREATE DEFINER=root@localhost PROCEDURE p_{n}() SELECT CURRENT_USER()",
    "CREATE DEFINER='root'@'%' FUNCTION f_{n}() RETURNS INT RETURN 1",
    "CREATE SERVER s_{n} FOREIGN DATA WRAPPER mysql OPTIONS (HOST '127.0.0.1', USER 'root')",
    "CREATE TABLE fed_{n} (x INT) ENGINE=FEDERATED CONNECTION='mysql://root@127.0.0.1/mysql/user'",
    "DROP DATABASE `{agency}`",
    "DELETE FROM `{agency}`.stolen",
]
WRAPPERS = [
    "{x};", "/*!{x} */;", "/*!50000 {x} */;", "/*M!100100 {x} */;", "-- {x}\n;",
    "SELECT '{q}';", "/* {x} */ SELECT 1;", "DELIMITER $$\n{x}$$\nDELIMITER ;",
    "DELIMITER ;;\n{x};;\nDELIMITER ;", "DELIMITER //\n{x} //\n\\d ;",
]


@st.composite
def hostile_item(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        command = draw(st.sampled_from(CLIENT_COMMANDS))
        wrapper = draw(st.sampled_from(["{x}", "{x};", "/*!{x} */;", "SELECT '{q}';",
                                        "DELIMITER $$\n{x}$$\nDELIMITER ;", "{x}\\g"]))
    else:
        command = draw(st.sampled_from(STATEMENTS))
        wrapper = draw(st.sampled_from(WRAPPERS))
    return wrapper.replace("{q}", command.replace("'", "''")).replace("{x}", command)


def _fill(text: str, arena: Arena, counter: list[int]) -> str:
    while "{marker}" in text:
        counter[0] += 1
        text = text.replace("{marker}", str(arena.markers / f"m{counter[0]}"), 1)
    return (text.replace("{secret}", str(arena.secret_file)).replace("{agency}", arena.agency_db)
            .replace("{evil}", f"evil_{counter[0]}")
            .replace("{n}", str(counter[0])))


def _tables_with_secret(arena: Arena) -> list[str]:
    server = arena.server
    rows = server.query(
        "SELECT CONCAT(table_schema, '.', table_name) FROM information_schema.tables WHERE "
        f"table_type = 'BASE TABLE' AND table_schema NOT IN {SYSTEM_SCHEMAS!r}").split()
    found = []
    for name in rows:
        schema, _, table = name.partition(".")
        if arena.secret in server.query(f"SELECT * FROM `{schema}`.`{table}`"):
            found.append(name)
    return found


def _replay(arena: Arena, items: list[str], force: bool) -> None:
    counter = [0]
    body = "\n".join(_fill(item, arena, counter) for item in items)
    dump = ("CREATE TABLE loot (x LONGTEXT);\nINSERT INTO loot VALUES ('start');\n"
            + body + "\nSELECT 1;\n").encode()
    name = f"drbackup_drill_f_{secrets.token_hex(4)}"
    admin = my.connect(arena.source)
    error = ""
    try:
        replay = my.create_replay_user(admin, name)

        def feed(sink: IO[bytes]) -> None:
            sink.write(dump)

        try:
            my.restore_mysql(arena.source, name, feed, replay_as=replay,
                             extra_args=("--force",) if force else ())
        except DumpError as exc:
            error = f"{exc.message} {exc.stderr_tail}"
        assert list(arena.markers.iterdir()) == [], body
        assert _tables_with_secret(arena) == [], body
        assert arena.secret not in error, body
        assert arena.server.query(
            "SELECT COUNT(*) FROM information_schema.views WHERE definer LIKE 'root@%'") \
            + arena.server.query(
            "SELECT COUNT(*) FROM information_schema.routines WHERE definer LIKE 'root@%'") \
            == "00", body
        grants = arena.server.query(f"SHOW GRANTS FOR '{name}'@'%'").splitlines()
        escaped = name.replace("_", BATCH_BACKSLASH + "_")  # -B output doubles the backslash
        assert [g for g in grants if not g.startswith("GRANT USAGE ON *.*")] == [
            f"GRANT ALL PRIVILEGES ON `{escaped}`.* TO `{name}`@`%`"], (body, grants)
        assert arena.server.query("SELECT GROUP_CONCAT(x) FROM stolen",
                                  arena.agency_db) == "mine", body
        assert _server_state(arena.server) == arena.baseline, body
    finally:
        admin.query(f"DROP DATABASE IF EXISTS `{name}`;")
        my.drop_replay_user(admin, name)
        admin.cleanup()


def _hostile_dump(arena: Arena, items: list[str], force: bool) -> None:
    _replay(arena, items, force)


_items = st.lists(hostile_item(), min_size=1, max_size=4)
test_hostile_mariadb_dumps, test_hostile_mariadb_dumps_long = fuzz_pair(
    _hostile_dump, _items, st.booleans(), examples=30)
