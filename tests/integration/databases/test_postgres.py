"""PostgreSQL sources against a real throwaway cluster: a round trip through S3 keeps every row;
failed dumps (missing database, dump killed midway, dump below min_size) make no snapshot and a
failed run; the password appears in no process's argv and no log line."""

# ruff: noqa: S608 - test SQL built from our own generated names

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from drbackup.config import load_config
from drbackup.errors import ExitCode, NotFoundError
from drbackup.jobs.restore_db import restore_database
from drbackup.jobs.runtime import Runtime
from tests.support.dbcheck import all_cmdlines, local_snapshots, runs, wait_until
from tests.support.servers import MotoServer, PostgresServer
from tests.support.workspace import Workspace

SCHEMA = """
CREATE SEQUENCE invoice_no START 1000;
SELECT setval('invoice_no', 4242);
CREATE TABLE items (
    id integer PRIMARY KEY,
    name text NOT NULL,
    payload bytea,
    doc jsonb,
    price numeric(12, 2),
    created timestamptz NOT NULL
);
INSERT INTO items
SELECT g, 'item-' || g, decode(md5(g::text), 'hex') || '\\x00ff'::bytea,
       jsonb_build_object('n', g, 'tags', jsonb_build_array('a', g % 7), 'ok', g % 2 = 0),
       (g % 1000) / 7.0, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute'
FROM generate_series(1, 100000) g;
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    item_id integer NOT NULL REFERENCES items (id),
    quantity integer NOT NULL CHECK (quantity > 0),
    note text
);
INSERT INTO orders (item_id, quantity, note)
SELECT (g * 37) % 100000 + 1, g % 9 + 1, CASE WHEN g % 3 = 0 THEN NULL ELSE 'n' || g END
FROM generate_series(1, 5000) g;
CREATE TABLE blobs (id integer PRIMARY KEY, data bytea NOT NULL);
INSERT INTO blobs SELECT g, decode(repeat(md5(g::text), 64), 'hex') FROM generate_series(1, 300) g;
CREATE VIEW expensive_items AS SELECT id, name, price FROM items WHERE price > 100;
"""
TABLES = ("items", "orders", "blobs")


def fingerprint(server: PostgresServer, database: str) -> dict[str, str]:
    """Row count and ordered checksum of every table, the view, and the sequence."""
    found = {}
    for table in TABLES:
        found[table] = server.query(
            f"SELECT count(*) || ':' || md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), ''))"
            f" FROM {table} t", database)
    found["view"] = server.query(
        "SELECT count(*) || ':' || md5(string_agg(v::text, '|' ORDER BY v.id)) "
        "FROM expensive_items v", database)
    found["sequence"] = server.query("SELECT last_value FROM invoice_no", database)
    found["orders_seq"] = server.query("SELECT last_value FROM orders_id_seq", database)
    return found


@pytest.fixture
def pg_database(postgres_server: PostgresServer) -> Iterator[str]:
    name = postgres_server.create_database("src")
    yield name
    postgres_server.drop_database(name)


def add_pg_source(ws: Workspace, server: PostgresServer, database: str, **extra: object
                  ) -> Path:
    password_file = ws.secret_file("pg.password", server.password + "\n")
    ws.add_source("records", "db", "postgres", dsn=server.dsn(database),
                  password_file=str(password_file), **extra)
    return password_file


def snapshots(ws: Workspace) -> list[dict[str, Any]]:
    listing = ws.cli("--json", "snapshots", "--agency", "records", check=True)
    return list(json.loads(listing.stdout))


def test_round_trip_through_s3_keeps_every_row(
        workspace: Workspace, s3_server: MotoServer, bucket: str,
        postgres_server: PostgresServer, pg_database: str) -> None:
    postgres_server.psql(SCHEMA, pg_database)
    before = fingerprint(postgres_server, pg_database)
    assert before["items"].startswith("100000:")
    workspace.add_s3_store("offsite", s3_server, bucket)
    workspace.add_agency("records", store="offsite")
    add_pg_source(workspace, postgres_server, pg_database)
    workspace.cli("repo", "init", check=True)

    backup = workspace.cli("backup", "--agency", "records", check=True)
    assert postgres_server.password not in backup.stdout + backup.stderr
    [snapshot] = snapshots(workspace)
    assert {"kind=postgres", f"database={pg_database}", "format=custom",
            "source=db"} <= set(snapshot["tags"])
    [run] = runs(workspace.state_dir, agency="records", source="db")
    assert run.result == "success" and run.details["dump_bytes"] > 1_000_000
    assert run.details["dump_seconds"] > 0

    postgres_server.drop_database(pg_database)
    restored = workspace.cli("restore-db", "--agency", "records", "--source", "db",
                             "--into", pg_database, "--yes", check=True)
    assert "(created)" in restored.stdout
    assert fingerprint(postgres_server, pg_database) == before
    # The test server's user is a superuser: said, once (#14, least privilege for replays).
    assert restored.stderr.count("connects as a superuser") == 1, restored.stderr

    # An existing non-empty database is never overwritten unless asked.
    refused = workspace.cli("restore-db", "--agency", "records", "--source", "db",
                            "--into", pg_database, "--yes")
    assert refused.returncode == ExitCode.TARGET_REFUSED, refused.stderr
    assert "not empty" in refused.stderr
    postgres_server.psql("DELETE FROM orders WHERE id % 2 = 0", pg_database)
    workspace.cli("restore-db", "--agency", "records", "--source", "db", "--into", pg_database,
                  "--overwrite", "--clean", "--yes", check=True)
    assert fingerprint(postgres_server, pg_database) == before


def test_all_databases_one_snapshot_each_plus_globals(
        workspace: Workspace, postgres_server: PostgresServer) -> None:
    first = postgres_server.create_database("alla")
    second = postgres_server.create_database("allb")
    role = f"auditor_{first[-10:]}"
    postgres_server.psql(f"CREATE ROLE {role} NOLOGIN")
    try:
        postgres_server.psql("CREATE TABLE t (v text); INSERT INTO t VALUES ('one')", first)
        postgres_server.psql("CREATE TABLE t (v text); INSERT INTO t VALUES ('two')", second)
        workspace.add_agency("records")
        others = postgres_server.query(
            "SELECT string_agg(datname, ',') FROM pg_database WHERE NOT datistemplate "
            f"AND datname NOT IN ('{first}', '{second}')").split(",")
        add_pg_source(workspace, postgres_server, "postgres", all=True,
                      exclude_databases=others, min_size=100)
        workspace.cli("repo", "init", check=True)
        workspace.cli("backup", "--agency", "records", check=True)
        tags = sorted(s.tag("database") or "" for s in local_snapshots(
            workspace.state_dir, "records", Path(workspace.agency("records")["password_file"])))
        assert tags == sorted([first, second, "_globals"])
        [run] = runs(workspace.state_dir, agency="records", source="db")
        assert len(run.details["snapshots"]) == 3 and run.details["dump_bytes"] > 0
        config = load_config(workspace.config_path)
        agency = config.agency("records")
        rt = Runtime.create(config)
        try:
            with pytest.raises(NotFoundError, match="several databases"):
                restore_database(rt, agency, "db", into="x")
            target = f"{second}_copy"
            outcome = restore_database(rt, agency, "db", database=second, into=target)
            assert outcome.created and outcome.database == second
            assert postgres_server.query("SELECT v FROM t", target) == "two"
            postgres_server.drop_database(target)
            # Roles come back from the globals snapshot.
            postgres_server.psql(f"DROP ROLE {role}")
            restore_database(rt, agency, "db", database="_globals", into="postgres")
        finally:
            rt.close()
        assert postgres_server.query(
            f"SELECT count(*) FROM pg_roles WHERE rolname = '{role}'") == "1"
    finally:
        postgres_server.psql(f"DROP ROLE IF EXISTS {role}")
        postgres_server.drop_database(first)
        postgres_server.drop_database(second)


def test_all_databases_one_failing_dump_does_not_stop_the_rest(
        workspace: Workspace, postgres_server: PostgresServer) -> None:
    """issue 17 item 3: the backup role may not connect to the middle database; the first and
    the last are still dumped (one snapshot each), the run fails with DUMP_FAILED, its one error
    line names the failed database and counts the others, and the run's details hold each
    database's result and snapshot."""
    first, middle, last = (postgres_server.create_database(p) for p in ("parta", "partb", "partc"))
    role = f"backup_{first[-10:]}"
    postgres_server.psql(f"CREATE ROLE {role} LOGIN PASSWORD '{postgres_server.password}'; "
                         f"GRANT pg_read_all_data TO {role}; "
                         f'REVOKE CONNECT ON DATABASE "{middle}" FROM PUBLIC')
    try:
        for database in (first, middle, last):
            postgres_server.psql(f"CREATE TABLE t (v text); INSERT INTO t VALUES ('{database}')",
                                 database)
        workspace.add_agency("records")
        others = postgres_server.query(
            "SELECT string_agg(datname, ',') FROM pg_database WHERE NOT datistemplate "
            f"AND datname NOT IN ('{first}', '{middle}', '{last}')").split(",")
        password_file = workspace.secret_file("pg.password", postgres_server.password + "\n")
        dsn = postgres_server.dsn("postgres").replace("://postgres@", f"://{role}@")
        assert role in dsn
        workspace.add_source("records", "db", "postgres", dsn=dsn,
                             password_file=str(password_file), all=True, globals=False,
                             exclude_databases=others, min_size=100)
        workspace.cli("repo", "init", check=True)

        backup = workspace.cli("backup", "--agency", "records")
        assert backup.returncode == ExitCode.DUMP_FAILED, backup.stderr
        errors = [line for line in backup.stderr.splitlines()
                  if line.startswith("drbackup: error")]
        assert len(errors) == 1, backup.stderr
        [line] = errors
        assert middle in line and first not in line and last not in line, line
        assert "no snapshot was made" not in line, line
        assert "1 of 3 dumps failed" in line and "the other 2 dumps were backed up" in line, line

        made = [s for s in snapshots(workspace) if "source=db" in s["tags"]]
        by_database = {tag.removeprefix("database="): s["id"] for s in made
                       for tag in s["tags"] if tag.startswith("database=")}
        assert sorted(by_database) == sorted([first, last]), made

        [run] = runs(workspace.state_dir, agency="records", source="db")
        assert run.result == "failed" and middle in (run.error or "")
        recorded = {r["database"]: r for r in run.details["snapshots"]}
        assert sorted(recorded) == sorted([first, middle, last]), run.details
        assert recorded[middle]["result"] == "failed" and recorded[middle]["snapshot_id"] is None
        assert "permission denied" in recorded[middle]["error"], recorded[middle]
        for database in (first, last):
            assert recorded[database]["result"] == "success", recorded[database]
            assert recorded[database]["snapshot_id"] == by_database[database]
        assert "permission denied" in run.details["stderr_tail"]
    finally:
        for database in (first, middle, last):
            postgres_server.drop_database(database)
        postgres_server.psql(f"DROP ROLE IF EXISTS {role}")


def assert_failed_without_snapshot(ws: Workspace, result: subprocess.CompletedProcess[str],
                                   expected_tail: str, source: str = "db") -> None:
    assert result.returncode == ExitCode.DUMP_FAILED, result.stderr
    assert "no snapshot was made" in result.stderr
    assert local_snapshots(ws.state_dir, "records",
                           Path(ws.agency("records")["password_file"])) == []
    [run] = runs(ws.state_dir, agency="records", source=source)
    assert run.result == "failed"
    assert expected_tail in run.details["stderr_tail"], run.details
    assert expected_tail in (run.error or "")


@contextmanager
def exclusive_lock(server: PostgresServer, database: str, table: str) -> Iterator[None]:
    """Another session holds an ACCESS EXCLUSIVE lock: pg_dump waits inside the server."""
    locker = subprocess.Popen(
        ["psql", "-X", "-q", "-d", server.dsn(database)], stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True, env=server.env())
    assert locker.stdin is not None
    try:
        locker.stdin.write(f"BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE;\n")
        locker.stdin.flush()
        wait_until(lambda: server.query(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            f"WHERE c.relname = '{table}' AND l.mode = 'AccessExclusiveLock' AND l.granted",
            database) == "1", what="the lock")
        yield
    finally:
        locker.kill()
        locker.wait()


def test_failed_dumps_make_no_snapshot(workspace: Workspace, postgres_server: PostgresServer,
                                       pg_database: str) -> None:
    """A database that does not exist, a dump below min_size, a dump past its time limit."""
    postgres_server.psql("CREATE TABLE t (v int); INSERT INTO t VALUES (1)", pg_database)
    workspace.add_agency("records")
    password_file = workspace.secret_file("pg.password", postgres_server.password + "\n")
    for source_id, database, extra in (("missing", "no_such_database", {}),
                                       ("small", pg_database, {"min_size": "10MB"}),
                                       ("slow", pg_database, {"timeout": "2s"})):
        workspace.add_source("records", source_id, "postgres", dsn=postgres_server.dsn(database),
                             password_file=str(password_file), **extra)
    workspace.cli("repo", "init", check=True)

    missing = workspace.cli("backup", "--agency", "records", "--source", "missing")
    assert_failed_without_snapshot(workspace, missing,
                                   'database "no_such_database" does not exist', "missing")
    small = workspace.cli("backup", "--agency", "records", "--source", "small")
    assert_failed_without_snapshot(workspace, small, "less than the minimum plausible size",
                                   "small")
    with exclusive_lock(postgres_server, pg_database, "t"):
        slow = workspace.cli("backup", "--agency", "records", "--source", "slow")
    assert_failed_without_snapshot(workspace, slow, "did not finish within 2s", "slow")


def test_dump_killed_midway_makes_no_snapshot_and_password_stays_out_of_argv(
        workspace: Workspace, postgres_server: PostgresServer, pg_database: str) -> None:
    """A session holds an exclusive lock so pg_dump waits inside the server; meanwhile every
    process's argv is sampled; then the dump's backend is terminated."""
    postgres_server.psql("CREATE TABLE t (v int); INSERT INTO t SELECT generate_series(1, 1000)",
                         pg_database)
    workspace.add_agency("records")
    add_pg_source(workspace, postgres_server, pg_database)
    workspace.cli("repo", "init", check=True)
    workspace.write()
    waiting = ("SELECT pid FROM pg_stat_activity WHERE application_name = 'drbackup' "
               f"AND datname = '{pg_database}' AND wait_event_type = 'Lock'")
    with exclusive_lock(postgres_server, pg_database, "t"):
        backup = subprocess.Popen(
            [sys.executable, "-m", "drbackup", "--config", str(workspace.config_path),
             "--log-format", "json", "backup", "--agency", "records"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=workspace.env())
        try:
            wait_until(lambda: postgres_server.query(waiting) != "", what="pg_dump waiting")
            samples = [all_cmdlines() for _ in range(5)]
            dumps = [line for sample in samples for line in sample if "pg_dump" in line]
            assert any("--format=custom" in line for line in dumps)
            assert not any(postgres_server.password in line for s in samples for line in s)
            postgres_server.query(f"SELECT pg_terminate_backend(pid) FROM ({waiting}) w")
            stdout, stderr = backup.communicate(timeout=120)
        finally:
            backup.kill()
    result = subprocess.CompletedProcess(backup.args, backup.returncode, stdout, stderr)
    assert_failed_without_snapshot(workspace, result, "terminating connection")
    assert postgres_server.password not in stdout + stderr
    state_text = (workspace.state_dir / "state.db").read_bytes()
    assert postgres_server.password.encode() not in state_text


def test_a_password_in_the_restore_target_is_refused_and_never_stored(
        workspace: Workspace, postgres_server: PostgresServer, pg_database: str) -> None:
    """issue 17 item 5: `--into postgresql://user:s3cret@...` is refused in one line before
    anything runs (exit 2, like the config's dsn check); 's3cret' lands in no state row."""
    postgres_server.psql("CREATE TABLE t (v int); INSERT INTO t VALUES (1)", pg_database)
    workspace.add_agency("records")
    add_pg_source(workspace, postgres_server, pg_database)
    workspace.cli("repo", "init", check=True)
    workspace.cli("backup", "--agency", "records", check=True)
    target = f"postgresql://user:s3cret@127.0.0.1:{postgres_server.port}/restored"

    refused = workspace.cli("restore-db", "--agency", "records", "--source", "db",
                            "--into", target, "--yes")
    assert refused.returncode == ExitCode.USAGE, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "password" in lines[0], refused.stderr
    assert "s3cret" not in refused.stdout + refused.stderr
    assert runs(workspace.state_dir, agency="records", job="restore-db") == []
    with sqlite3.connect(workspace.state_dir / "state.db") as state:
        tables = [row[0] for row in state.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in state.execute(f'SELECT * FROM "{table}"'):
                assert "s3cret" not in repr(row), (table, row)
