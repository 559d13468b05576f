"""Reading what a PostgreSQL dump needs from its table of contents (#17 item 7): the roles it
names and the database's own properties, from pg_restore --create --schema-only output. The
statements are recognised by their token shape: names and strings that look like SQL (a table
called "TO", a function body granting to someone) do not count."""

from __future__ import annotations

from drbackup.jobs.restore_db_server import missing_roles_error
from drbackup.sources.pgdumpinfo import parse_dump_sql, split_statements

TOC = r"""
--
-- PostgreSQL database dump
--
\restrict abc123
SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);

CREATE DATABASE "Permits 2024" WITH TEMPLATE = template0 ENCODING = 'UTF8'
    LOCALE_PROVIDER = libc LOCALE = 'zh_CN.UTF-8' TABLESPACE = fast_disk;
ALTER DATABASE "Permits 2024" OWNER TO "App Owner";
\unrestrict abc123
\connect -reuse-previous=on "dbname='Permits 2024'"
COMMENT ON DATABASE "Permits 2024" IS '许可证; with a ''quote'' and GRANT ALL TO nobody';
ALTER DATABASE "Permits 2024" SET search_path TO 'app', 'public';
ALTER ROLE reader IN DATABASE "Permits 2024" SET work_mem TO '8MB';
-- Name: app; Type: SCHEMA; Schema: -; Owner: app_owner
CREATE SCHEMA app;
ALTER SCHEMA app OWNER TO app_owner;
CREATE TABLE app."TO" (id integer);
ALTER TABLE app."TO" OWNER TO "App Owner";
CREATE FUNCTION app.f() RETURNS void LANGUAGE plpgsql AS $body$
BEGIN EXECUTE 'GRANT ALL ON app."TO" TO intruder'; PERFORM 1; END $body$;
ALTER FUNCTION app.f() OWNER TO app_owner;
ALTER LARGE OBJECT 16401 OWNER TO lo_keeper;
GRANT CONNECT ON DATABASE "Permits 2024" TO reader;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT SELECT ON TABLE app."TO" TO reader, "Audit Team" WITH GRANT OPTION;
GRANT USAGE ON SCHEMA app TO PUBLIC;
GRANT SELECT ON TABLE app."TO" TO clerk GRANTED BY granter;
ALTER DEFAULT PRIVILEGES FOR ROLE app_owner IN SCHEMA app GRANT SELECT ON TABLES TO viewer;
"""


def test_roles_owners_and_grantees() -> None:
    info = parse_dump_sql(TOC)
    assert info.database == "Permits 2024"
    assert info.owner_roles == {"App Owner", "app_owner", "lo_keeper", "reader"}
    # ALTER DEFAULT PRIVILEGES FOR ROLE app_owner: skipped with --no-privileges too.
    assert info.privilege_roles == {"reader", "Audit Team", "clerk", "granter", "viewer",
                                    "app_owner"}
    assert "intruder" not in info.owner_roles | info.privilege_roles
    assert "nobody" not in info.privilege_roles and "PUBLIC" not in info.privilege_roles
    assert info.needed_roles(no_owner=True, no_privileges=True) == frozenset()
    assert info.needed_roles(no_owner=True, no_privileges=False) == info.privilege_roles
    assert info.needed_roles(no_owner=False, no_privileges=True) == info.owner_roles


def test_database_properties_renamed_to_the_target() -> None:
    info = parse_dump_sql(TOC)
    # The tablespace is the old server's; encoding and locale come along.
    assert info.create_options == ("TEMPLATE = template0 ENCODING = 'UTF8' "
                                   "LOCALE_PROVIDER = libc LOCALE = 'zh_CN.UTF-8'")
    renamed = [(s.group, s.for_database('"restored"')) for s in info.database_statements]
    assert renamed == [
        ("owner", 'ALTER DATABASE "restored" OWNER TO "App Owner";'),
        ("setting", "COMMENT ON DATABASE \"restored\" IS '许可证; with a ''quote'' and GRANT ALL "
                    "TO nobody';"),
        ("setting", "ALTER DATABASE \"restored\" SET search_path TO 'app', 'public';"),
        ("role-setting", "ALTER ROLE reader IN DATABASE \"restored\" SET work_mem TO '8MB';"),
        ("privilege", 'GRANT CONNECT ON DATABASE "restored" TO reader;'),
    ]


def test_statements_split_around_quotes_dollar_quotes_and_meta_commands() -> None:
    parts = split_statements("\\connect x\nSELECT ';' AS a; -- c;\nSELECT $q$ ; $q$;\n"
                             'SELECT "a;b" FROM t;\n\\unrestrict k\n')
    assert parts == ["SELECT ';' AS a", "SELECT $q$ ; $q$", 'SELECT "a;b" FROM t']


def test_a_dump_without_create_database_has_no_properties() -> None:
    info = parse_dump_sql("CREATE TABLE t (id int);\nALTER TABLE t OWNER TO someone;\n")
    assert info.database is None and info.create_options == ""
    assert info.owner_roles == {"someone"} and info.database_statements == ()


def test_the_missing_roles_line_names_them_and_the_way_out() -> None:
    info = parse_dump_sql(TOC)
    error = missing_roles_error({"app_owner", "viewer"}, info, "restore@db-b:5432",
                                no_owner=False, no_privileges=False)
    line = error.one_line()
    assert "\n" not in line and error.exit_code == 31
    assert "missing on restore@db-b:5432: app_owner, viewer" in line
    assert "restore globals first or use --no-owner --no-privileges" in line
    only_grants = missing_roles_error({"viewer"}, info, "x", no_owner=True, no_privileges=False)
    assert "restore globals first or use --no-privileges" in only_grants.one_line()


def test_statements_that_would_lex_differently_are_not_taken() -> None:
    """A crafted dump cannot smuggle SQL past the splitter into the statements drbackup replays:
    an E'' string (backslash escapes), a block comment hiding a quote, a psql variable."""
    crafted = (
        "CREATE DATABASE d WITH TEMPLATE = template0 LOCALE = E'\\';' ENCODING = 'UTF8';\n"
        "COMMENT ON DATABASE d IS E'\\'; DROP DATABASE other; --';\n"
        "ALTER DATABASE d SET search_path TO /* ' */ 'a';\n"
        "ALTER DATABASE d SET work_mem TO :'x';\n"
        "ALTER DATABASE d SET search_path TO '; DROP DATABASE other; --';\n")
    info = parse_dump_sql(crafted)
    assert info.create_options == "TEMPLATE = template0 ENCODING = 'UTF8'"
    assert [s.for_database('"n"') for s in info.database_statements] == [
        "ALTER DATABASE \"n\" SET search_path TO   'a';",  # the comment dropped
        "ALTER DATABASE \"n\" SET search_path TO '; DROP DATABASE other; --';"]
    assert split_statements("SELECT /* ; */ E'\\';x' ;SELECT 2") == ["SELECT   E'\\';x'",
                                                                       "SELECT 2"]
