"""Config of database sources: passwords never in a DSN, password files checked like every
secret file, unknown keys rejected."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomli_w

from drbackup.config.loader import ConfigInvalid, parse_config
from drbackup.config.models import MysqlSource, PostgresSource


def config_text(tmp_path: Path, source: dict[str, object]) -> str:
    password = tmp_path / "repo.password"
    password.write_text("pw\n")
    password.chmod(0o600)
    return tomli_w.dumps({"daemon": {"state_dir": str(tmp_path / "state")},
                          "agencies": [{"id": "records", "password_file": str(password),
                                        "sources": [source]}]})


@pytest.mark.parametrize("dsn", [
    "postgresql://backup:s3cret@db/permits",
    "host=db user=backup password=s3cret dbname=permits",
])
def test_a_password_in_the_dsn_is_refused(tmp_path: Path, dsn: str) -> None:
    with pytest.raises(ConfigInvalid) as caught:
        parse_config(config_text(tmp_path, {"id": "db", "kind": "postgres", "dsn": dsn}),
                     tmp_path / "c.toml")
    assert "must not contain a password" in caught.value.message
    assert "s3cret" not in caught.value.message
    assert "agencies[0].sources[0].dsn" in caught.value.message


def test_a_readable_db_password_file_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "db.password"
    secret.write_text("x\n")
    secret.chmod(0o644)
    text = config_text(tmp_path, {"id": "db", "kind": "mysql", "database": "licences",
                                  "password_file": str(secret)})
    with pytest.raises(ConfigInvalid) as caught:
        parse_config(text, tmp_path / "c.toml")
    assert "agencies[0].sources[0].password_file" in caught.value.message
    assert "chmod 600" in caught.value.message


def test_database_sources_parse_with_defaults(tmp_path: Path) -> None:
    secret = tmp_path / "db.password"
    secret.write_text("x\n")
    secret.chmod(0o600)
    config = parse_config(config_text(tmp_path, {
        "id": "db", "kind": "postgres", "dsn": "postgresql://backup@db/permits",
        "password_file": str(secret), "min_size": "1MB"}), tmp_path / "c.toml")
    source = config.agencies[0].sources[0]
    assert isinstance(source, PostgresSource)
    assert source.min_size == 1_000_000 and source.compression == 0 and not source.all
    my = MysqlSource.model_validate({"id": "m", "kind": "mysql", "database": "d"})
    assert my.min_size == 1024 and my.port == 3306


def test_unknown_keys_in_a_database_source_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigInvalid) as caught:
        parse_config(config_text(tmp_path, {"id": "db", "kind": "sqlite", "path": "/x.db",
                                            "pasword_file": "/y"}), tmp_path / "c.toml")
    assert "unknown key" in caught.value.message


@pytest.mark.parametrize(("source", "flag", "why"), [
    ({"kind": "postgres", "dsn": "dbname=p", "dump_args": ["--host=evil"]}, "--host",
     "connection settings come from the source"),
    ({"kind": "postgres", "dsn": "dbname=p", "dump_args": ["-f"]}, "-f",
     "sets the format, output"),
    ({"kind": "postgres", "dsn": "dbname=p", "dump_args": ["--file=/tmp/x"]}, "--file",
     "sets the format, output"),
    ({"kind": "postgres", "dsn": "dbname=p", "restore_args": ["--jobs=4"]}, "--jobs",
     "cannot work in parallel"),
    ({"kind": "postgres", "dsn": "dbname=p", "restore_args": ["--dbname=other"]}, "--dbname",
     "connection settings"),
    ({"kind": "mysql", "database": "d", "dump_args": ["--defaults-file=/etc/x.cnf"]},
     "--defaults-file", "could run commands"),
    ({"kind": "mysql", "database": "d", "restore_args": ["--init-command=SELECT 1"]},
     "--init-command", "could run commands"),
    ({"kind": "mysql", "database": "d", "restore_args": ["--force"]}, "--force",
     "hide failures"),
    ({"kind": "mysql", "database": "d", "dump_args": ["--plugin-dir=/tmp"]}, "--plugin-dir",
     "could run commands"),
    ({"kind": "mysql", "database": "d", "dump_args": ["--password=x"]}, "--password",
     "connection settings"),
    ({"kind": "mysql", "database": "d", "dump_args": ["--load-data-local-dir=/"]},
     "--load-data-local-dir", "could run commands"),
    ({"kind": "postgres", "dsn": "dbname=p", "dump_args": ["-Ox"]}, "-Ox", "allow-list"),
])
def test_a_forbidden_dump_or_restore_flag_is_refused_at_load_in_one_line(
        tmp_path: Path, source: dict[str, object], flag: str, why: str) -> None:
    with pytest.raises(ConfigInvalid) as caught:
        parse_config(config_text(tmp_path, {"id": "db", **source}), tmp_path / "c.toml")
    message = caught.value.message
    assert "\n" not in message
    key = "dump_args" if "dump_args" in source else "restore_args"
    assert f"agencies[0].sources[0].{key}" in message
    assert f"{flag!r} is not allowed" in message and why in message
    assert "x.cnf" not in message or flag == "--defaults-file"


def test_a_value_flag_must_carry_its_value_in_one_argument(tmp_path: Path) -> None:
    with pytest.raises(ConfigInvalid) as caught:
        parse_config(config_text(tmp_path, {"id": "db", "kind": "postgres", "dsn": "dbname=p",
                                            "dump_args": ["--exclude-table", "audit"]}),
                     tmp_path / "c.toml")
    assert 'write --exclude-table with its value in one argument' in caught.value.message


def test_allowed_dump_and_restore_args_load(tmp_path: Path) -> None:
    config = parse_config(config_text(tmp_path, {
        "id": "db", "kind": "postgres", "dsn": "dbname=p",
        "dump_args": ["--no-comments", "--exclude-table-data=audit_log", "--no-publications"],
        "restore_args": ["--no-tablespaces"]}), tmp_path / "c.toml")
    source = config.agencies[0].sources[0]
    assert isinstance(source, PostgresSource)
    assert source.dump_args == ["--no-comments", "--exclude-table-data=audit_log",
                                "--no-publications"]
    assert source.restore_args == ["--no-tablespaces"]


def test_a_mysql_source_names_a_database_or_dumps_them_all(tmp_path: Path) -> None:
    """#17 item 8: all = true needs no database; without it, one is required."""
    every = MysqlSource.model_validate({"id": "m", "kind": "mysql", "all": True,
                                        "exclude_databases": ["scratch"]})
    assert every.database is None and every.globals
    with pytest.raises(ConfigInvalid) as caught:
        parse_config(config_text(tmp_path, {"id": "db", "kind": "mysql"}), tmp_path / "c.toml")
    assert "all = true" in caught.value.message
