"""restore-db --schema/--table/--at refusals that need no server, each in one line before
anything runs: a plain SQL dump (the PostgreSQL globals) cannot be restored partially, a SQLite
snapshot is restored whole, MariaDB has no schemas, and --at/--schema/--table do not mix with
--snapshot or --all-databases."""

from __future__ import annotations

from pathlib import Path

import pytest

from drbackup.cli.main import main
from drbackup.config.models import MysqlSource, PostgresSource, SqliteSource
from drbackup.errors import ExitCode, UsageError
from drbackup.jobs.restore_db import PartialSelection, refuse_selection
from drbackup.jobs.restore_db_server import refuse_partial_sql

TABLE = PartialSelection.of(tables=["permits"])


def test_a_plain_sql_dump_is_refused_in_one_line() -> None:
    with pytest.raises(UsageError) as caught:
        refuse_partial_sql(PartialSelection.of(schemas=["app"]))
    line = caught.value.one_line()
    assert "\n" not in line
    assert line.startswith("a plain SQL dump cannot be restored partially; ")
    refuse_partial_sql(None)
    refuse_partial_sql(PartialSelection())


def test_sqlite_and_mariadb_schemas_are_refused() -> None:
    lite = SqliteSource.model_validate({"id": "s", "kind": "sqlite", "path": "/srv/a.sqlite"})
    with pytest.raises(UsageError, match="a SQLite snapshot is restored whole"):
        refuse_selection(lite, TABLE)
    my = MysqlSource.model_validate({"id": "m", "kind": "mysql", "database": "d"})
    for selection in (PartialSelection.of(schemas=["app"]),
                      PartialSelection.of(tables=["app.permits"])):
        with pytest.raises(UsageError, match="holds one database and no schemas"):
            refuse_selection(my, selection)
    refuse_selection(my, TABLE)
    with pytest.raises(UsageError, match="--clean drops and re-creates the whole"):
        refuse_selection(my, TABLE, clean=True)  # it would drop the tables not named
    pg = PostgresSource.model_validate({"id": "p", "kind": "postgres", "dsn": "dbname=p"})
    refuse_selection(pg, PartialSelection.of(schemas=["app"], tables=["app.permits"]))


def _config(tmp_path: Path) -> Path:
    password = tmp_path / "repo.password"
    password.write_text("pw\n")
    password.chmod(0o600)
    path = tmp_path / "c.toml"
    path.write_text(f"""[daemon]
state_dir = "{tmp_path / 'state'}"
[[agencies]]
id = "records"
password_file = "{password}"
  [[agencies.sources]]
  id = "db"
  kind = "postgres"
  dsn = "dbname=p"
""")
    return path


@pytest.mark.parametrize(("extra", "said"), [
    (["--all-databases", "--at", "2h ago"], "--at applies to one database"),
    (["--all-databases", "--table", "t"], "--table applies to one database"),
    (["--all-databases", "--schema", "s"], "--schema applies to one database"),
    (["--into", "x", "--at", "2h", "--snapshot", "abcd1234"], "--at and --snapshot exclude"),
    (["--into", "x", "--table", "a b"], "is not a plain name"),
    (["--into", "x", "--at", "yesterday-ish"], "is not a date and time"),
])
def test_combinations_are_refused_in_one_line_before_anything_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], said: str
        ) -> None:
    code = main(["--config", str(_config(tmp_path)), "restore-db", "--agency", "records",
                 "--source", "db", "--yes", *extra])
    assert code == ExitCode.USAGE
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert said in err[0], err
