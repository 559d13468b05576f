"""The recovery kit brings an agency's PostgreSQL server back (#17 item 10), with two real
clusters: a source with all = true and globals on server A and a `[[restore_targets]]` entry
naming server B are backed up and sealed into a kit; a fresh host (new HOME and working
directory, nothing of the agency's config, state or password files; only the kit and the
identity key) opens the kit and runs `restore-db --all-databases --target standby` with the
config the kit wrote. B then holds the same roles, schema, rows and sequence values, and no
password appears in what the commands print."""

# ruff: noqa: S608 - test SQL built from our own generated names

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from tests.integration.databases.test_restore_other_server_pg import schema_dump
from tests.support.kits import printed_signer
from tests.support.servers import PostgresServer
from tests.support.workspace import Workspace

SCHEMA = """
CREATE SCHEMA office AUTHORIZATION {owner};
SET ROLE {owner};
CREATE SEQUENCE office.case_no START 500;
CREATE TABLE office.cases (
    id bigint PRIMARY KEY DEFAULT nextval('office.case_no'),
    title text NOT NULL,
    opened date NOT NULL
);
CREATE TABLE office.notes (id serial PRIMARY KEY, case_id bigint REFERENCES office.cases (id),
                           body text);
CREATE VIEW office.open_cases AS SELECT c.id, c.title, count(n.id) AS notes
    FROM office.cases c LEFT JOIN office.notes n ON n.case_id = c.id GROUP BY c.id, c.title;
INSERT INTO office.cases (title, opened)
SELECT '案件-' || g || ' 广州市天河区', date '2024-01-01' + g FROM generate_series(1, 300) g;
INSERT INTO office.notes (case_id, body)
SELECT 500 + g % 300, '备注 ' || g || ' 已处理' FROM generate_series(1, 200) g;
SELECT setval('office.case_no', 1234);
RESET ROLE;
GRANT USAGE ON SCHEMA office TO {reader};
GRANT SELECT ON ALL TABLES IN SCHEMA office TO {reader};
"""


def contents(server: PostgresServer, database: str) -> dict[str, str]:
    """Per-table row count and md5, the sequences' values, the view's rows, and the roles."""
    found = {table: server.query(
        f"SELECT count(*) || ':' || md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
        f" FROM office.{table} t", database) for table in ("cases", "notes")}
    found["sequences"] = server.query(
        "SELECT string_agg(schemaname || '.' || sequencename || '=' || "
        "coalesce(last_value::text, '-'), ',' ORDER BY 1) FROM pg_sequences", database)
    found["view"] = server.query(
        "SELECT md5(string_agg(v::text, '|' ORDER BY v::text)) FROM office.open_cases v",
        database)
    found["owner"] = server.query(
        f"SELECT datdba::regrole FROM pg_database WHERE datname = '{database}'")
    return found


def test_a_fresh_host_restores_the_postgres_server_from_the_kit(
        workspace: Workspace, tmp_path: Path, postgres_server: PostgresServer,
        postgres_server_b: PostgresServer) -> None:
    a, b = postgres_server, postgres_server_b
    tag = uuid.uuid4().hex[:8]
    owner, reader, name = f"office_owner_{tag}", f"office_reader_{tag}", f"office_{tag}"
    a.psql(f"CREATE ROLE {owner} NOLOGIN; CREATE ROLE {reader} NOLOGIN; "
           f"CREATE DATABASE {name} OWNER {owner} TEMPLATE template0;")
    a.psql(SCHEMA.format(owner=owner, reader=reader), name)
    want_schema, want = schema_dump(a, name), contents(a, name)
    assert want["cases"].startswith("300:") and "office.case_no=1234" in want["sequences"]
    others = a.query("SELECT string_agg(datname, ',') FROM pg_database WHERE NOT datistemplate "
                     f"AND datname <> '{name}'").split(",")

    workspace.add_agency("records")
    workspace.add_source("records", "db", "postgres", dsn=a.dsn("postgres"), all=True,
                         exclude_databases=others, min_size=100, password_file=str(
                             workspace.secret_file("a.password", a.password + "\n")))
    workspace.config["restore_targets"] = [
        {"name": "standby", "kind": "postgres", "host": "127.0.0.1", "port": b.port,
         "user": "postgres",
         "password_file": str(workspace.secret_file("b.password", b.password + "\n"))}]
    workspace.cli("repo", "init", check=True)
    workspace.cli("backup", "--agency", "records", check=True)
    keys, kits = tmp_path / "keys", tmp_path / "kits"
    made = [workspace.cli("recovery-kit", "keygen", "--out", str(keys / "identity"),
                          check=True),
            workspace.cli("recovery-kit", "create", "--recipient", str(keys / "identity.pub"),
                          "--out", str(kits), check=True)]

    # The fresh host: its own HOME and working directory, the kit and the identity key only.
    host = tmp_path / "fresh-host"
    (host / "home").mkdir(parents=True)
    shutil.copy(kits / "drbackup-recovery-kit-all.kit", host / "kit.kit")
    shutil.copy(keys / "identity", host / "identity")
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "HOME": str(host / "home"), "LANG": "C.UTF-8"}
    for passed in ("TMPDIR", "PYTHONPATH"):  # PYTHONPATH: a worktree runs its own code
        if passed in os.environ:
            env[passed] = os.environ[passed]

    def drbackup(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "drbackup", *args], cwd=host, env=env,
                              capture_output=True, text=True, timeout=300, check=False)

    opened = drbackup("recovery-kit", "open", "--identity", str(host / "identity"), "--kit",
                      str(host / "kit.kit"), "--out", str(host / "recovery"),
                      "--signer-fingerprint",
                      printed_signer(kits / "drbackup-recovery-kit-all.txt"))
    assert opened.returncode == 0, opened.stderr
    config = host / "recovery" / "drbackup.toml"
    text = config.read_text()
    assert 'kind = "postgres"' in text and "all = true" in text and "[[restore_targets]]" in text
    assert a.password not in text and b.password not in text

    done = drbackup("--config", str(config), "restore-db", "--agency", "records", "--source",
                    "db", "--all-databases", "--target", "standby", "--yes")
    assert done.returncode == 0, done.stderr
    server = f"postgres@127.0.0.1:{b.port}"
    assert f"database _globals: restored into postgres on {server}" in done.stdout
    assert f"database {name}: restored into {name} on {server} (created)" in done.stdout
    assert f"restored 2 of 2 database(s) of records/db on {server}" in done.stdout
    assert schema_dump(b, name) == want_schema
    assert contents(b, name) == want
    assert b.query(f"SELECT count(*) FROM pg_roles WHERE rolname IN ('{owner}', '{reader}')"
                   ) == "2"
    assert b.query("SELECT current_user") == "postgres"  # B's own postgres password still works

    printed = "".join(r.stdout + r.stderr for r in (*made, opened, done))
    for secret in (a.password, b.password, workspace.passwords["records"]):
        assert secret not in printed
