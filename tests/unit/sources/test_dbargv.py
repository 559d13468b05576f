"""The database tools' argv, pinned whole (borgmatic style), with a source's allow-listed
dump_args / restore_args in their place."""

from __future__ import annotations

from drbackup.config.models import MysqlSource, PostgresSource
from drbackup.sources.dbargv import mariadb_dump_argv, pg_dump_argv, pg_restore_argv

PG = PostgresSource.model_validate({
    "id": "permits", "kind": "postgres", "dsn": "postgresql://backup@db/permits",
    "dump_args": ["--no-comments", "--exclude-table-data=audit_*"],
    "restore_args": ["--no-tablespaces"]})
MY = MysqlSource.model_validate({
    "id": "licences", "kind": "mysql", "database": "licences",
    "dump_args": ["--skip-triggers", "--ignore-table-data=licences.audit"],
    "restore_args": ["--max-allowed-packet=64M"]})


def test_pg_dump_argv_carries_dump_args_before_the_database() -> None:
    assert pg_dump_argv("/usr/bin/pg_dump", PG, "postgresql://backup@db/permits") == [
        "/usr/bin/pg_dump", "--format=custom", "--compress=0", "--no-password",
        "--no-comments", "--exclude-table-data=audit_*", "--dbname=postgresql://backup@db/permits"]


def test_pg_dump_argv_without_dump_args() -> None:
    plain = PG.model_copy(update={"dump_args": []})
    assert pg_dump_argv("pg_dump", plain, "dbname=x") == [
        "pg_dump", "--format=custom", "--compress=0", "--no-password", "--dbname=dbname=x"]


def test_pg_restore_argv_clean_extra_restore_args_and_list() -> None:
    assert pg_restore_argv("pg_restore", PG, "dbname=t", clean=True, extra=["--no-owner"],
                           use_list="/tmp/x/toc.list") == [
        "pg_restore", "--no-password", "--exit-on-error", "--single-transaction",
        "--dbname=dbname=t", "--clean", "--if-exists", "--no-owner", "--no-tablespaces",
        "--use-list=/tmp/x/toc.list"]
    assert pg_restore_argv("pg_restore", PG.model_copy(update={"restore_args": []}),
                           "dbname=t") == [
        "pg_restore", "--no-password", "--exit-on-error", "--single-transaction",
        "--dbname=dbname=t"]


def test_mariadb_dump_argv_defaults_file_first_dump_args_before_the_separator() -> None:
    assert mariadb_dump_argv("mariadb-dump", "/run/x/client.cnf", MY, "licences") == [
        "mariadb-dump", "--defaults-extra-file=/run/x/client.cnf", "--single-transaction",
        "--routines", "--events", "--triggers", "--hex-blob", "--default-character-set=utf8mb4",
        "--skip-triggers", "--ignore-table-data=licences.audit", "--", "licences"]
