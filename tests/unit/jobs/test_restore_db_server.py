"""restore-db onto another server (#17 item 7): [[restore_targets]] in the config (password
files checked like every secret, names unique), the source re-pointed at the target without
any password in its connection string, and the command line's --target / --target-* options
refused when mixed or incomplete."""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO

import pytest
import tomli_w

from drbackup.cli.main import main
from drbackup.config.loader import ConfigInvalid, parse_config
from drbackup.config.models import MysqlSource, PostgresSource, RestoreTarget
from drbackup.config.models.sources import dsn_has_password
from drbackup.errors import ExitCode, NotFoundError, UsageError
from drbackup.jobs.restore_db_server import refuse_dsn_with_target, retarget, without_role


def _secret(path: Path, mode: int = 0o600) -> Path:
    path.write_text("pw\n")
    path.chmod(mode)
    return path


def config_text(tmp_path: Path, targets: list[dict[str, object]]) -> str:
    password = _secret(tmp_path / "repo.password")
    return tomli_w.dumps({
        "daemon": {"state_dir": str(tmp_path / "state")},
        "agencies": [{"id": "records", "password_file": str(password), "sources": [
            {"id": "db", "kind": "postgres", "dsn": "postgresql://backup@db-a/permits"},
            {"id": "lite", "kind": "sqlite", "path": str(tmp_path / "x.sqlite")}]}],
        "restore_targets": targets})


def pg_target(tmp_path: Path, **extra: object) -> dict[str, object]:
    return {"name": "standby", "kind": "postgres", "host": "db-b.internal", "user": "restore",
            "password_file": str(_secret(tmp_path / "b.password")), **extra}


def test_targets_parse_and_are_found_by_name(tmp_path: Path) -> None:
    config = parse_config(config_text(tmp_path, [pg_target(tmp_path)]), tmp_path / "c.toml")
    target = config.restore_target("standby")
    assert target.server_port == 5432 and target.describe() == "restore@db-b.internal:5432"
    with pytest.raises(NotFoundError) as caught:
        config.restore_target("nope")
    assert "standby" in caught.value.hint


def test_a_readable_target_password_file_and_a_twice_used_name_are_refused(
        tmp_path: Path) -> None:
    readable = pg_target(tmp_path)
    _secret(Path(str(readable["password_file"])), 0o644)
    with pytest.raises(ConfigInvalid) as caught:
        parse_config(config_text(tmp_path, [readable]), tmp_path / "c.toml")
    assert "restore_targets[0].password_file" in caught.value.message
    _secret(Path(str(readable["password_file"])))
    with pytest.raises(ConfigInvalid) as caught:
        parse_config(config_text(tmp_path, [readable, readable]), tmp_path / "c.toml")
    assert "restore_targets[1].name" in caught.value.message


def test_the_source_is_re_pointed_at_the_target(tmp_path: Path) -> None:
    source = PostgresSource.model_validate({
        "id": "db", "kind": "postgres", "dsn": "postgresql://backup@db-a/permits",
        "passfile": str(tmp_path / "pgpass"), "bin_dir": "/usr/lib/postgresql/15/bin"})
    target = RestoreTarget.model_validate({
        "name": "b", "kind": "postgres", "host": "db'b", "port": 6543, "user": "re store",
        "password_file": str(tmp_path / "b.password")})
    moved = retarget(source, target)
    assert moved.dsn == "host='db\\'b' port=6543 user='re store' dbname=postgres"
    assert not dsn_has_password(moved.dsn)
    assert moved.password_file == tmp_path / "b.password" and moved.passfile is None
    assert moved.bin_dir == source.bin_dir
    my = MysqlSource.model_validate({"id": "m", "kind": "mysql", "database": "licences",
                                     "host": "db-a", "user": "backup"})
    on_socket = retarget(my, RestoreTarget.model_validate({
        "name": "s", "kind": "mysql", "host": "/run/mysqld/mysqld.sock", "user": "root"}))
    assert on_socket.socket == Path("/run/mysqld/mysqld.sock") and on_socket.port == 3306
    with pytest.raises(UsageError):
        retarget(my, target)
    with pytest.raises(UsageError):
        refuse_dsn_with_target("postgresql://backup@db-c/permits")
    refuse_dsn_with_target("permits")


@pytest.mark.parametrize(("extra", "expected"), [
    (["--target", "standby", "--target-host", "db-c"], "exclude each other"),
    (["--target-host", "db-c"], "--target-host and --target-user"),
    (["--target-host", "db-c", "--target-user", "u", "--target-port", "0"], "--target-port"),
])
def test_target_options_mixed_or_incomplete_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], expected: str
        ) -> None:
    path = tmp_path / "c.toml"
    path.write_text(config_text(tmp_path, [pg_target(tmp_path)]))
    code = main(["--config", str(path), "restore-db", "--agency", "records", "--source", "db",
                 "--yes", *extra])
    assert code == ExitCode.USAGE
    [line] = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert expected in line


def test_a_sqlite_source_is_not_restored_onto_a_server(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.toml"
    path.write_text(config_text(tmp_path, [pg_target(tmp_path)]))
    code = main(["--config", str(path), "restore-db", "--agency", "records", "--source", "lite",
                 "--target-host", "db-c", "--target-user", "u", "--into", "/tmp/x.sqlite"])
    assert code == ExitCode.USAGE
    assert "not restored onto a server" in capsys.readouterr().err


@pytest.mark.parametrize(("extra", "expected"), [
    (["--into", "x"], "--into applies to one database"),
    (["--database", "permits"], "--database applies to one database"),
    (["--snapshot", "abcd1234"], "--snapshot applies to one database"),
])
def test_all_databases_refuses_options_of_one_database(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], expected: str
        ) -> None:
    path = tmp_path / "c.toml"
    path.write_text(config_text(tmp_path, [pg_target(tmp_path)]))
    code = main(["--config", str(path), "restore-db", "--agency", "records", "--source", "db",
                 "--all-databases", "--target", "standby", "--yes", *extra])
    assert code == ExitCode.USAGE
    assert expected in capsys.readouterr().err


def test_a_globals_replay_leaves_the_connecting_role_alone() -> None:
    """pg_dumpall's lines for the role the restore connects as (its password, its SUPERUSER)
    never reach psql: replayed, they would lock the rest of --all-databases out."""
    globals_sql = (b"CREATE ROLE postgres;\nALTER ROLE postgres WITH SUPERUSER LOGIN PASSWORD "
                   b"'SCRAM-SHA-256$a';\nCREATE ROLE postgres_reader;\nALTER ROLE "
                   b"postgres_reader WITH NOLOGIN;\nCREATE ROLE \"Re Store\";\n"
                   b"ALTER ROLE \"Re Store\" WITH PASSWORD 'x';\nGRANT postgres_reader TO "
                   b"postgres;\n")

    def feed(sink: IO[bytes]) -> None:
        for index in range(0, len(globals_sql), 7):  # lines split across writes
            sink.write(globals_sql[index:index + 7])

    for role, kept in (("postgres", b"CREATE ROLE postgres_reader;\nALTER ROLE postgres_reader "
                        b"WITH NOLOGIN;\nCREATE ROLE \"Re Store\";\nALTER ROLE \"Re Store\" WITH "
                        b"PASSWORD 'x';\nGRANT postgres_reader TO postgres;\n"),
                       ("Re Store", globals_sql.replace(
                           b"CREATE ROLE \"Re Store\";\nALTER ROLE \"Re Store\" WITH PASSWORD "
                           b"'x';\n", b""))):
        out = io.BytesIO()
        without_role(feed, role)(out)
        assert out.getvalue() == kept
