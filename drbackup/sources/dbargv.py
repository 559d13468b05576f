"""The argv of the database tools drbackup starts for dumps and restores: pure functions, so
every command line is pinned by a test (tests/unit/sources/test_dbargv.py). A source's
`dump_args` / `restore_args` (allow-listed when the config is loaded,
drbackup/config/models/dbargs.py) go after drbackup's own flags and before the database
argument, each as one argv element: no shell ever sees them."""

from __future__ import annotations

from collections.abc import Sequence

from drbackup.config.models import MysqlSource, PostgresSource


def pg_dump_argv(pg_dump: str, source: PostgresSource, dsn: str) -> list[str]:
    """`pg_dump` of one database in custom format to stdout."""
    return [pg_dump, "--format=custom", f"--compress={source.compression}", "--no-password",
            *source.dump_args, f"--dbname={dsn}"]


def pg_restore_argv(pg_restore: str, source: PostgresSource, target_dsn: str, *,
                    clean: bool = False, extra: Sequence[str] = (),
                    use_list: str | None = None) -> list[str]:
    """`pg_restore` of a dump read from stdin into `target_dsn`, in one transaction, stopping
    at the first error; `use_list`: only the table-of-contents entries that file lists (a
    partial restore, drbackup/sources/pgtoc.py)."""
    return [pg_restore, "--no-password", "--exit-on-error", "--single-transaction",
            f"--dbname={target_dsn}", *(["--clean", "--if-exists"] if clean else []),
            *extra, *source.restore_args, *([f"--use-list={use_list}"] if use_list else [])]


def mariadb_dump_argv(binary: str, defaults_file: str, source: MysqlSource,
                      database: str) -> list[str]:
    """`mariadb-dump`/`mysqldump` of one database; the defaults file must come first."""
    return [binary, f"--defaults-extra-file={defaults_file}", "--single-transaction",
            "--routines", "--events", "--triggers", "--hex-blob",
            "--default-character-set=utf8mb4", *source.dump_args, "--", database]
