"""A MariaDB source with all = true (#17 item 8), two real servers: every database of server A
but the system and the excluded ones is dumped, one snapshot each (a database whose dump fails
is named and the others are kept), plus A's users and grants; `restore-db --all-databases
--target` brings them all onto server B: each database's dump equal (routines, events,
triggers, character set), the excluded one absent, the user there with equal grants, an
account B already had left as it was. A crafted users-and-grants snapshot runs nothing."""

# ruff: noqa: S608 - test SQL built from our own generated names

from __future__ import annotations

import functools
import uuid

import pytest

from drbackup.config import load_config
from drbackup.errors import ExitCode
from drbackup.jobs.runtime import Runtime
from tests.integration.databases.test_restore_other_server_mariadb import (
    SCHEMA,
    full_dump,
    programs,
    schemata,
)
from tests.support.servers import DB_TEST_USER, MariaDBServer
from tests.support.workspace import Workspace

SYSTEM = {"information_schema", "performance_schema", "sys", "mysql"}


def grants(server: MariaDBServer, account: str) -> list[str]:
    return sorted(server.query(f"SHOW GRANTS FOR {account}").splitlines())


def test_all_databases_with_users_and_grants_onto_another_server(
        workspace: Workspace, mariadb_server: MariaDBServer,
        mariadb_server_b: MariaDBServer, request: pytest.FixtureRequest) -> None:
    a, b = mariadb_server, mariadb_server_b
    tag = uuid.uuid4().hex[:8]
    names = licences, permits, skipped, broken = tuple(f"{n}_{tag}" for n in (
        "licences", "permits", "skipped", "broken"))
    clerk, keep, evil = f"'clerk_{tag}'@'10.0.%'", f"'keep_{tag}'@'%'", f"'evil_{tag}'@'%'"
    for shared in (a, b):  # the servers are shared by the worker's later tests
        request.addfinalizer(functools.partial(shared.drop, names, (clerk, keep, evil)))
    others = sorted(schemata(a) - SYSTEM)  # what other tests left on the shared server
    a.sql(f"CREATE DATABASE `{licences}`; CREATE DATABASE `{permits}` CHARACTER SET utf8mb4 "
          f"COLLATE utf8mb4_unicode_ci; CREATE DATABASE `{skipped}`; CREATE DATABASE `{broken}`;")
    a.sql(SCHEMA, licences)
    a.sql("CREATE TABLE permits (id INT PRIMARY KEY, holder VARCHAR(32)); INSERT INTO permits "
          "VALUES (1, '张三'), (2, '李四');", permits)
    a.sql("CREATE TABLE t (x INT); CREATE TABLE kept (x INT); CREATE VIEW v AS SELECT x FROM t; "
          "DROP TABLE t;", broken)  # a view on a dropped table: mariadb-dump fails on it
    a.sql(f"CREATE USER {clerk} IDENTIFIED BY 'c-{tag}' WITH MAX_QUERIES_PER_HOUR 100; "
          f"GRANT SELECT, INSERT ON `{licences}`.* TO {clerk}; "
          f"GRANT UPDATE (note) ON `{licences}`.licences TO {clerk}; "
          f"GRANT EXECUTE ON PROCEDURE `{licences}`.add_licence TO {clerk}; "
          f"CREATE USER {keep} IDENTIFIED BY 'from-a'; GRANT ALL ON *.* TO {keep};")
    b.sql(f"CREATE USER {keep} IDENTIFIED BY 'on-b-{tag}'; GRANT SELECT ON mysql.* TO {keep};")
    keep_on_b = grants(b, keep)
    want = {name: full_dump(a, name) for name in (licences, permits)}
    want_programs = programs(a, licences)

    workspace.add_agency("records")
    workspace.add_source("records", "db", "mysql", all=True,
                         exclude_databases=[*others, skipped], host="127.0.0.1", port=a.port,
                         user=DB_TEST_USER, password_file=str(
                             workspace.secret_file("a.password", a.password + "\n")))
    workspace.config["restore_targets"] = [
        {"name": "standby", "kind": "mysql", "host": "127.0.0.1", "port": b.port,
         "user": DB_TEST_USER,
         "password_file": str(workspace.secret_file("b.password", b.password + "\n"))}]
    workspace.cli("repo", "init", check=True)
    backup = workspace.cli("backup", "--agency", "records")
    assert backup.returncode == ExitCode.DUMP_FAILED, backup.stderr
    assert "1 of 4 dumps failed" in backup.stderr and broken in backup.stderr

    done = workspace.cli("restore-db", "--agency", "records", "--source", "db",
                         "--all-databases", "--target", "standby", "--yes")
    assert done.returncode == 0, done.stderr
    server = f"{DB_TEST_USER}@127.0.0.1:{b.port}"
    assert f"database _globals: restored into mysql on {server}" in done.stdout
    assert f"restored 3 of 3 database(s) of records/db on {server}" in done.stdout
    for name in (licences, permits):
        assert full_dump(b, name) == want[name]
        assert b.query(f"SHOW CREATE DATABASE `{name}`") == a.query(
            f"SHOW CREATE DATABASE `{name}`")
    assert "utf8mb4_unicode_ci" in b.query(f"SHOW CREATE DATABASE `{permits}`")
    assert programs(b, licences) == want_programs
    assert skipped not in schemata(b) and broken not in schemata(b)
    assert grants(b, clerk) == grants(a, clerk) and len(grants(b, clerk)) == 4
    assert grants(b, keep) == keep_on_b  # an existing account is never changed ...
    assert f"keep_{tag}@%" in done.stderr and "left unchanged" in done.stderr  # ... and named
    assert b.password.encode() not in (workspace.state_dir / "state.db").read_bytes()

    # A crafted users-and-grants snapshot (the repository password is all it takes): refused
    # whole, exit 31; neither its account nor its DROP reaches server B.
    forged = workspace.root / "forged.sql"
    forged.write_text(f"CREATE USER {evil};\nGRANT ALL ON *.* TO {evil};\n"
                      f"DROP DATABASE `{permits}`;\n")
    rt = Runtime.create(load_config(workspace.write()))
    try:
        agency = rt.config.agency("records")
        rt.restic.backup(rt.target(agency), [], tags=[
            "agency=records", "source=db", "kind=mysql", "database=_globals",
            "format=grants"], stdin_command=["cat", str(forged)],
            stdin_filename="users-and-grants.sql")
    finally:
        rt.close()
    refused = workspace.cli("restore-db", "--agency", "records", "--source", "db",
                            "--database", "_globals", "--target", "standby", "--yes")
    assert refused.returncode == ExitCode.DB_RESTORE_REFUSED, refused.stderr
    assert "statement 3 is not CREATE USER or GRANT" in refused.stderr
    assert not b.query(f"SELECT user FROM mysql.user WHERE user = 'evil_{tag}'")
    assert permits in schemata(b)
