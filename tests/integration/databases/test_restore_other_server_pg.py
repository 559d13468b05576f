"""restore-db onto another PostgreSQL server (#17 item 7, the disaster case), with two real
clusters: a realistic database (two schemas, an enum, sequences, a view, a function and its
trigger, large objects, Chinese text, an owner role, a reader role with grants and default
privileges, database settings, a role setting, a comment) is backed up from server A and
restored onto server B.

One test walks the disaster in order, as a DBA would meet it: B has none of the dump's roles
(refused early, in one line, nothing created); --no-owner --no-privileges restores anyway;
--all-databases through a named [[restore_targets]] entry replays the globals first and gives
back the same schema, rows, sequences, large objects and the database's owner and settings,
while one database it cannot restore does not stop the others (#17 item 8); a restoring user
that may not take the dump's roles over fails and leaves no database behind (but keeps one
that existed)."""

# ruff: noqa: S608 - test SQL built from our own generated names

from __future__ import annotations

import subprocess
import uuid

from drbackup.errors import ExitCode
from tests.support.dbcheck import runs
from tests.support.servers import PG_BIN, PostgresServer
from tests.support.workspace import Workspace

SCHEMA = """
CREATE SCHEMA app AUTHORIZATION {owner};
CREATE SCHEMA registry AUTHORIZATION {owner};
SET ROLE {owner};
CREATE TYPE app.permit_state AS ENUM ('draft', 'issued', 'revoked');
CREATE SEQUENCE app.permit_no START 1000;
CREATE TABLE app.permits (
    id bigint PRIMARY KEY DEFAULT nextval('app.permit_no'),
    holder text NOT NULL,
    state app.permit_state NOT NULL DEFAULT 'draft',
    issued timestamptz,
    updated timestamptz
);
CREATE TABLE registry.parcels (
    id serial PRIMARY KEY,
    permit bigint REFERENCES app.permits (id),
    address text,
    area numeric(10, 2),
    doc jsonb
);
CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.updated := timestamptz '2025-01-01 00:00:00+00'; RETURN NEW; END $$;
CREATE TRIGGER permits_touch BEFORE INSERT OR UPDATE ON app.permits
    FOR EACH ROW EXECUTE FUNCTION app.touch();
CREATE VIEW registry.issued AS
    SELECT p.id, p.holder, r.address FROM app.permits p JOIN registry.parcels r ON r.permit = p.id
    WHERE p.state = 'issued';
INSERT INTO app.permits (holder, state, issued)
SELECT '持证人-' || g || ' 北京市',
       (ARRAY['draft', 'issued', 'revoked'])[g % 3 + 1]::app.permit_state,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 hour'
FROM generate_series(1, 3000) g;
INSERT INTO registry.parcels (permit, address, area, doc)
SELECT 1000 + g % 3000, '上海市浦东新区 路' || g || '号', g / 7.0,
       jsonb_build_object('n', g, '区', '浦东')
FROM generate_series(1, 2000) g;
SELECT setval('app.permit_no', 5000);
SELECT lo_from_bytea(0, convert_to(repeat('大对象-', 500), 'UTF8'));
SELECT lo_from_bytea(0, decode(repeat(md5('x'), 100), 'hex'));
RESET ROLE;
GRANT USAGE ON SCHEMA app, registry TO {reader};
GRANT SELECT ON ALL TABLES IN SCHEMA app, registry TO {reader};
ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA app GRANT SELECT ON TABLES TO {reader};
"""


def schema_dump(server: PostgresServer, database: str, *flags: str) -> str:
    """pg_dump --schema-only, without its per-run lines (\\restrict keys, version comments)."""
    done = subprocess.run(
        [str(PG_BIN / "pg_dump"), "--schema-only", *flags, "-d", server.dsn(database)],
        capture_output=True, text=True, env=server.env(), check=True)
    return "\n".join(line for line in done.stdout.splitlines()
                     if not line.startswith(("\\restrict", "\\unrestrict", "-- Dumped")))


def contents(server: PostgresServer, database: str) -> dict[str, str]:
    """Per-table row count and md5, sequence values, large objects (oid, md5)."""
    tables = server.query(
        "SELECT string_agg(quote_ident(table_schema) || '.' || quote_ident(table_name), ' ' "
        "ORDER BY 1) FROM information_schema.tables "
        "WHERE table_schema IN ('app', 'registry') AND table_type = 'BASE TABLE'",
        database).split()
    found = {table: server.query(
        f"SELECT count(*) || ':' || md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
        f" FROM {table} t", database) for table in tables}
    found["sequences"] = server.query(
        "SELECT string_agg(schemaname || '.' || sequencename || '=' || "
        "coalesce(last_value::text, '-'), ',' ORDER BY 1) FROM pg_sequences", database)
    found["large_objects"] = server.query(
        "SELECT string_agg(oid || ':' || md5(lo_get(oid)), ',' ORDER BY oid) "
        "FROM pg_largeobject_metadata", database)
    found["view"] = server.query("SELECT count(*) FROM registry.issued", database)
    return found


def database_properties(server: PostgresServer, database: str) -> dict[str, str]:
    """The database's owner, encoding, locale, comment, grants and settings."""
    literal = f"'{database}'"
    return {
        "database": server.query(
            "SELECT datdba::regrole || '|' || pg_encoding_to_char(encoding) || '|' || "
            "datcollate || '|' || datctype || '|' || coalesce(datacl::text, '') || '|' || "
            "coalesce(shobj_description(oid, 'pg_database'), '') "
            f"FROM pg_database WHERE datname = {literal}"),
        "settings": server.query(
            "SELECT string_agg(coalesce(r.rolname, '*') || '=' || array_to_string(s.setconfig, "
            "','), ';' ORDER BY 1) FROM pg_db_role_setting s LEFT JOIN pg_roles r "
            "ON r.oid = s.setrole JOIN pg_database d ON d.oid = s.setdatabase "
            f"WHERE d.datname = {literal}"),
        "lo_owners": server.query(
            "SELECT string_agg(oid || ':' || lomowner::regrole, ',' ORDER BY oid) "
            "FROM pg_largeobject_metadata", database),
    }


def databases(server: PostgresServer) -> set[str]:
    return set(server.query("SELECT datname FROM pg_database").split())


def test_disaster_restore_onto_another_postgres_server(
        workspace: Workspace, postgres_server: PostgresServer,
        postgres_server_b: PostgresServer) -> None:
    a, b = postgres_server, postgres_server_b
    tag = uuid.uuid4().hex[:8]
    owner, reader, restorer = f"permits_owner_{tag}", f"permits_reader_{tag}", f"weak_{tag}"
    name = f"permits_{tag}"
    a.psql(f"CREATE ROLE {owner} NOLOGIN; CREATE ROLE {reader} NOLOGIN; "
           f"CREATE DATABASE {name} OWNER {owner} TEMPLATE template0;")
    a.psql(f"ALTER DATABASE {name} SET search_path TO app, registry, public; "
           f"ALTER DATABASE {name} SET work_mem TO '8MB'; "
           f"ALTER ROLE {reader} IN DATABASE {name} SET statement_timeout TO '1min'; "
           f"COMMENT ON DATABASE {name} IS '许可证登记'; "
           f"GRANT CONNECT ON DATABASE {name} TO {reader};")
    a.psql(SCHEMA.format(owner=owner, reader=reader), name)
    want_schema = schema_dump(a, name)
    want_rows = contents(a, name)
    want_properties = database_properties(a, name)
    assert want_rows["app.permits"].startswith("3000:") and "," in want_rows["large_objects"]

    extra = f"extra_{tag}"  # a second database of the server, small
    a.psql(f"CREATE DATABASE {extra}")
    a.psql("CREATE TABLE notes (id int PRIMARY KEY, body text); "
           "INSERT INTO notes SELECT g, '备忘 ' || g FROM generate_series(1, 50) g", extra)
    others = a.query("SELECT string_agg(datname, ',') FROM pg_database WHERE NOT datistemplate "
                     f"AND datname NOT IN ('{name}', '{extra}')").split(",")

    workspace.add_agency("records")
    a_password = workspace.secret_file("a.password", a.password + "\n")
    b_password = workspace.secret_file("b.password", b.password + "\n")
    weak_password = workspace.secret_file("weak.password", f"w-{tag}\n")
    workspace.add_source("records", "db", "postgres", dsn=a.dsn("postgres"), all=True,
                         exclude_databases=others, min_size=100, password_file=str(a_password))
    workspace.config["restore_targets"] = [
        {"name": "standby", "kind": "postgres", "host": "127.0.0.1", "port": b.port,
         "user": "postgres", "password_file": str(b_password)},
        {"name": "weak", "kind": "postgres", "host": "127.0.0.1", "port": b.port,
         "user": restorer, "password_file": str(weak_password)},
    ]
    workspace.cli("repo", "init", check=True)
    workspace.cli("backup", "--agency", "records", check=True)
    on_b = ["--target-host", "127.0.0.1", "--target-port", str(b.port), "--target-user",
            "postgres", "--target-password-file", str(b_password)]
    restore = ["restore-db", "--agency", "records", "--source", "db", "--yes"]
    server = f"postgres@127.0.0.1:{b.port}"

    # 1. B has none of the dump's roles: refused before anything changes, in one line.
    refused = workspace.cli(*restore, "--database", name, *on_b)
    assert refused.returncode == ExitCode.DB_RESTORE_REFUSED, refused.stderr
    [line] = refused.stderr.strip().splitlines()
    assert "restore globals first or use --no-owner --no-privileges" in line
    assert owner in line and reader in line and b.password not in line
    assert name not in databases(b)

    # 2. Without owners and grants the restore goes through as the target's user.
    plain = f"plain_{tag}"
    done = workspace.cli(*restore, "--database", name, *on_b, "--into", plain, "--no-owner",
                         "--no-privileges", check=True)
    assert f"into {plain} on {server} (created)" in done.stdout
    bare = ("--no-owner", "--no-privileges")
    assert schema_dump(b, plain, *bare) == schema_dump(a, name, *bare)
    assert contents(b, plain) == want_rows
    settings = database_properties(b, plain)["settings"]
    assert "search_path=app, registry, public" in settings and "work_mem=8MB" in settings
    assert reader not in settings  # a role setting needs the role: left out with --no-owner

    # 3. Everything at once through the named target (#17 item 8): the globals first (so the
    # roles exist), then each database; one that cannot be restored (B already has a
    # non-empty database of that name) does not stop the others.
    b.psql(f"CREATE DATABASE {extra}")
    b.psql("CREATE TABLE local_only (id int)", extra)
    every = workspace.cli(*restore, "--all-databases", "--target", "standby")
    assert every.returncode == ExitCode.TARGET_REFUSED, every.stderr
    assert f"database _globals: restored into postgres on {server}" in every.stdout
    assert f"database {name}: restored into {name} on {server} (created)" in every.stdout
    assert f"database {extra}: database {extra!r} exists and is not empty" in every.stderr
    assert (f"restored 2 of 3 database(s) of records/db on {server}" in every.stdout
            and f"failed: {extra}" in every.stdout)
    assert schema_dump(b, name) == want_schema
    assert contents(b, name) == want_rows
    assert database_properties(b, name) == want_properties
    assert b.query("SELECT count(*) FROM local_only", extra) == "0"  # untouched
    # The globals held server A's postgres role and password: left out, B's still works.
    assert "changing role 'postgres'" in every.stderr
    assert b.query("SELECT current_user") == "postgres"

    # 4. A restoring user that may not hand objects to the dump's roles: pg_restore fails,
    # and the database drbackup created is dropped again...
    b.psql(f"CREATE ROLE {restorer} LOGIN CREATEDB PASSWORD 'w-{tag}'")
    weak = [*restore, "--database", name, "--target", "weak"]
    failed = workspace.cli(*weak, "--into", f"weak_{tag}")
    assert failed.returncode == ExitCode.DUMP_FAILED, failed.stderr
    assert f"OWNER TO {owner}" in failed.stderr and "was dropped again" in failed.stderr
    assert f"weak_{tag}" not in databases(b)
    # ...while a database that existed before is left in place.
    b.psql(f"CREATE DATABASE kept_{tag} OWNER {restorer}")
    failed = workspace.cli(*weak, "--into", f"kept_{tag}")
    assert failed.returncode == ExitCode.DUMP_FAILED, failed.stderr
    assert f"OWNER TO {owner}" in failed.stderr and "dropped" not in failed.stderr
    assert f"kept_{tag}" in databases(b)

    text = (workspace.state_dir / "state.db").read_bytes()
    assert b.password.encode() not in text and f"w-{tag}".encode() not in text
    restores = runs(workspace.state_dir, agency="records", source="db", job="restore-db")
    assert [r.result for r in restores].count("success") == 3
    assert {r.details.get("server") for r in restores} == {
        server, f"{restorer}@127.0.0.1:{b.port}"}
