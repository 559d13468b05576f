"""Database restore drills against a real PostgreSQL: the latest dump is restored into a
throwaway database, every table is present with its row count in the report, the source's
assertions are run, and the database is dropped; a truncated dump backed up through a dump
folder fails the drill with a clear reason; a database left by a killed drill is dropped at the
next start."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drbackup.errors import ExitCode
from tests.support.dbcheck import LICENCES_SCHEMA, PERMITS_SCHEMA
from tests.support.servers import DB_TEST_USER, MariaDBServer, PostgresServer
from tests.support.workspace import Workspace

SCHEMA = PERMITS_SCHEMA


@pytest.fixture
def permits_db(postgres_server: PostgresServer) -> Iterator[str]:
    name = postgres_server.create_database("permits")
    postgres_server.psql(SCHEMA, name)
    yield name
    postgres_server.drop_database(name)


def _exists(server: PostgresServer, names: list[str]) -> list[str]:
    """Which of these databases exist (other tests may drill on the same server meanwhile)."""
    rows = server.query("SELECT datname FROM pg_database")
    return [n for n in names if n in rows.splitlines()]


def _scratch_names(drill: dict[str, Any]) -> list[str]:
    report = json.loads(Path(drill["report"]).read_text())["report"]
    names = [d["scratch_database"] for d in report["databases"] if "scratch_database" in d]
    assert names, report
    return names


def _dumpdir_agency(workspace: Workspace, server: PostgresServer, folder: Path) -> None:
    """Agency "planning" with a dump folder drilled on `server`, initialised and backed up."""
    password = workspace.secret_file("pg.password", server.password + "\n")
    workspace.add_agency("planning")
    workspace.add_source("planning", "dumps", "dumpdir", path=str(folder), settle="0s",
                         drill_postgres_dsn=server.dsn("postgres"),
                         drill_password_file=str(password))
    workspace.cli("repo", "init", check=True)
    workspace.cli("backup", "--agency", "planning", check=True)


def _good_dump_drills(workspace: Workspace, dump: Path, content: bytes) -> dict[str, int]:
    """A good dump arrives in the folder (newer than the bad one), is backed up and drilled:
    the drill passes; returns its row counts per table."""
    dump.write_bytes(content)
    os.utime(dump, (1_700_000_100, 1_700_000_100))
    workspace.cli("backup", "--agency", "planning", check=True)
    code, outcome = _verify(workspace)
    assert code == 0, outcome
    return {t["table"]: t["rows"] for t in outcome["drills"][0]["tables"]}


def _verify(workspace: Workspace, *args: str) -> tuple[int, dict[str, Any]]:
    result = workspace.cli("verify", "--agency", "planning", "--json", "--kind", "db", *args)
    assert result.stdout.strip(), result.stderr
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout)


def test_postgres_and_sqlite_drills_pass_with_row_counts_and_check_assertions(
        workspace: Workspace, postgres_server: PostgresServer, permits_db: str,
        tmp_path: Path) -> None:
    password = workspace.secret_file("pg.password", postgres_server.password + "\n")
    workspace.add_agency("planning")
    workspace.add_source("planning", "permits", "postgres", dsn=postgres_server.dsn(permits_db),
                         password_file=str(password),
                         **{"assert": ["SELECT count(*) > 0 FROM permits",
                                       "SELECT count(*) = 500 FROM inspections"]})
    registry = tmp_path / "registry.sqlite"
    with sqlite3.connect(registry) as db:
        db.execute("CREATE TABLE entries (id INTEGER PRIMARY KEY, name TEXT)")
        db.executemany("INSERT INTO entries (name) VALUES (?)", [(f"n{i}",) for i in range(40)])
    workspace.add_source("planning", "registry", "sqlite", path=str(registry),
                         **{"assert": ["SELECT count(*) = 40 FROM entries"]})
    workspace.cli("repo", "init", check=True)
    workspace.cli("backup", "--agency", "planning", check=True)
    # What a drill killed between CREATE DATABASE and DROP DATABASE leaves behind: the next
    # start drops it.
    leftover = "drbackup_drill_999_0"
    postgres_server.psql(f'CREATE DATABASE "{leftover}"')
    pending = workspace.state_dir / "scratch-db"
    pending.mkdir(parents=True)
    (pending / f"{leftover}.json").write_text(json.dumps({
        "agency": "planning", "source": "permits", "database": leftover,
        "admin_dsn": postgres_server.dsn("postgres")}))

    code, outcome = _verify(workspace)
    assert code == 0, outcome
    assert list(pending.iterdir()) == []
    assert _exists(postgres_server, [leftover]) == []
    drill, lite = outcome["drills"]
    assert drill["verdict"] == "pass", drill
    assert lite["verdict"] == "pass", lite
    assert lite["tables"] == [{"table": "entries", "rows": 40}]
    counts = {t["table"]: t["rows"] for t in drill["tables"]}
    assert counts == {"public.permits": 2000, "public.inspections": 500, "public.archive": 0}
    assert drill["bytes"] > 0 and drill["rto_estimate_seconds"] > 0
    report = json.loads(Path(drill["report"]).read_text())["report"]
    [database] = report["databases"]
    assert database["expected_tables"] == sorted(counts)
    assert all(a["ok"] for a in database["assertions"])
    assert _exists(postgres_server, _scratch_names(drill)) == []
    assert workspace.cli("verify-report", drill["report"]).returncode == 0

    # An assertion that does not hold fails the drill, naming it.
    workspace.agency("planning")["sources"][0]["assert"] = ["SELECT count(*) > 5000 FROM permits"]
    code, outcome = _verify(workspace, "--source", "permits")
    assert code == ExitCode.VERIFY_FAILED
    assert any("assertion failed: SELECT count(*) > 5000 FROM permits returned f" in r
               for r in outcome["drills"][0]["reasons"]), outcome
    assert _exists(postgres_server, _scratch_names(outcome["drills"][0])) == []


def test_truncated_dump_in_a_dump_folder_fails_and_a_good_one_passes(
        workspace: Workspace, postgres_server: PostgresServer, permits_db: str,
        tmp_path: Path) -> None:
    folder = tmp_path / "dumps"
    folder.mkdir()
    full = subprocess.run(["pg_dump", "--format=custom", "--compress=0",
                           f"--dbname={postgres_server.dsn(permits_db)}"],
                          env=postgres_server.env(), capture_output=True, check=True).stdout
    cut = folder / "permits-1.pgdump"
    cut.write_bytes(full[: len(full) * 2 // 3])
    os.utime(cut, (1_700_000_000, 1_700_000_000))
    _dumpdir_agency(workspace, postgres_server, folder)

    code, outcome = _verify(workspace)
    assert code == ExitCode.VERIFY_FAILED, outcome
    [drill] = outcome["drills"]
    assert drill["verdict"] == "fail"
    assert any("permits-1.pgdump: the dump does not restore" in r for r in drill["reasons"]), \
        drill["reasons"]
    assert _exists(postgres_server, _scratch_names(drill)) == []
    assert any("truncated or damaged dump" in r for r in drill["reasons"])

    counts = _good_dump_drills(workspace, folder / "permits-2.pgdump", full)
    assert counts["public.permits"] == 2000


def test_mariadb_drill_passes_with_row_counts(
        workspace: Workspace, mariadb_server: MariaDBServer) -> None:
    database = mariadb_server.create_database("licences")
    try:
        mariadb_server.sql(LICENCES_SCHEMA, database)
        password = workspace.secret_file("my.password", mariadb_server.password + "\n")
        workspace.add_agency("planning")
        workspace.add_source("planning", "licences", "mysql", database=database,
                             host="127.0.0.1", port=mariadb_server.port, user=DB_TEST_USER,
                             password_file=str(password),
                             **{"assert": ["SELECT COUNT(*) = 3 FROM licences"]})
        workspace.cli("repo", "init", check=True)
        workspace.cli("backup", "--agency", "planning", check=True)
        code, outcome = _verify(workspace)
        assert code == 0, outcome
        counts = {t["table"]: t["rows"] for t in outcome["drills"][0]["tables"]}
        assert counts == {"licences": 3, "empty_one": 0}
        report = json.loads(Path(outcome["drills"][0]["report"]).read_text())["report"]
        [scratch] = [d["scratch_database"] for d in report["databases"]]
        assert scratch.startswith("drbackup_drill_")
        assert scratch not in mariadb_server.query("SHOW DATABASES").split()
    finally:
        mariadb_server.drop_database(database)


def test_plain_sql_dump_cannot_run_psql_meta_commands_in_a_drill(
        workspace: Workspace, postgres_server: PostgresServer, permits_db: str,
        tmp_path: Path) -> None:
    """A dump folder's plain SQL dump is the agency's file, replayed by psql: a `\\!` in it
    would run a shell command as drbackup (which reads every agency's password). The replay
    runs under `\\restrict`: the hostile dump fails its drill and its command never runs; a
    real pg_dump plain dump (which carries its own \\restrict pair) still restores."""
    folder = tmp_path / "dumps"
    folder.mkdir()
    plain = subprocess.run(["pg_dump", "--format=plain",
                            f"--dbname={postgres_server.dsn(permits_db)}"],
                           env=postgres_server.env(), capture_output=True, check=True).stdout
    marker = tmp_path / "meta-command-ran"
    hostile = folder / "permits-1.sql"
    hostile.write_bytes(b"CREATE TABLE decoy (id integer);\n\\! touch " + str(marker).encode()
                        + b"\n\\unrestrict guess\n" + plain)
    os.utime(hostile, (1_700_000_000, 1_700_000_000))
    _dumpdir_agency(workspace, postgres_server, folder)

    code, outcome = _verify(workspace)
    assert code == ExitCode.VERIFY_FAILED, outcome
    [drill] = outcome["drills"]
    assert any("permits-1.sql: the dump does not restore" in r for r in drill["reasons"]), \
        drill["reasons"]
    assert not marker.exists()
    assert _exists(postgres_server, _scratch_names(drill)) == []

    assert b"\\restrict " in plain  # this pg_dump protects its own dumps the same way
    counts = _good_dump_drills(workspace, folder / "permits-2.sql", plain)
    assert counts["public.permits"] == 2000 and counts["public.inspections"] == 500
    assert not marker.exists()
