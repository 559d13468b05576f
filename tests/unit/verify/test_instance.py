"""The drill's local database instance, without starting a server: which programs it needs and
the one-line errors when they are missing, who runs PostgreSQL, the socket path limit, the roles
a plain dump needs, the config rules of drill_target, and how leftover servers are found."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from drbackup.config.models import DumpdirSource, MysqlSource, PostgresSource
from drbackup.errors import ConfigError, ExitCode
from drbackup.jobs.drills import drill_kind
from drbackup.jobs.drills.database import drill_target
from drbackup.jobs.drills.postgres import sql_roles
from drbackup.verify import instance
from drbackup.verify.instance import (
    RunAs,
    mariadb_programs,
    postgres_bin_dir,
    postgres_run_as,
)
from drbackup.verify.leftovers import processes_under, stop_servers_under


def _fake_pg(lib: Path, version: str) -> Path:
    bin_dir = lib / version / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("initdb", "postgres", "pg_restore", "psql"):
        (bin_dir / name).write_text("#!/bin/sh\n")
    return bin_dir


def test_newest_postgres_is_chosen_and_none_is_a_one_line_error_naming_the_package(
        tmp_path: Path) -> None:
    _fake_pg(tmp_path, "13")
    newest = _fake_pg(tmp_path, "16")
    (tmp_path / "17").mkdir()  # a client-only or half-removed version: no server binaries
    assert postgres_bin_dir(tmp_path) == newest
    with pytest.raises(ConfigError) as caught:
        postgres_bin_dir(tmp_path / "nothing")
    assert caught.value.exit_code == ExitCode.CONFIG
    assert "\n" not in caught.value.one_line()
    assert "install the postgresql package" in caught.value.hint
    assert 'drill_target = "same-server"' in caught.value.hint


def test_missing_mariadb_server_is_a_one_line_error_naming_the_package(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(instance, "_EXTRA_BIN_DIRS", ())
    with pytest.raises(ConfigError) as caught:
        mariadb_programs()
    assert "mariadb-install-db is not installed" in caught.value.message
    assert "install the mariadb-server package" in caught.value.hint


def test_postgres_runs_as_drbackup_itself_or_as_the_owner_of_state_dir(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1234)
    monkeypatch.setattr(os, "getegid", lambda: 1234)
    assert postgres_run_as(tmp_path).uid == 1234
    assert RunAs(1234, 1234, "x").wrap(["initdb"]) == ["initdb"]
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    if tmp_path.stat().st_uid == 0:
        with pytest.raises(ConfigError) as caught:
            postgres_run_as(tmp_path)
        assert "PostgreSQL refuses to run as root" in caught.value.message
        assert "User=drbackup" in caught.value.hint
    assert RunAs(101, 104, "postgres").wrap(["initdb", "-D", "x"]) == [
        "setpriv", "--reuid=101", "--regid=104", "--init-groups", "--", "initdb", "-D", "x"]


def test_a_socket_path_over_the_kernel_limit_is_refused_before_anything_starts(
        tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="longer than 107 bytes"):
        instance._check_socket_path(tmp_path / ("d" * 120) / ".s.PGSQL.5432")
    instance._check_socket_path(Path("/var/lib/drbackup/scratch/drill-12345-db/.s.PGSQL.5432"))


def test_roles_a_plain_dump_names_are_found(tmp_path: Path) -> None:
    dump = tmp_path / "d.sql"
    dump.write_text(
        "ALTER TABLE public.permits OWNER TO postgres;\n"
        'ALTER SCHEMA "Finance" OWNER TO "Finance Admin";\n'
        "GRANT SELECT ON TABLE public.permits TO reader;\n"
        "REVOKE ALL ON SCHEMA public FROM PUBLIC;\n"
        "INSERT INTO notes VALUES ('ALTER TABLE x OWNER TO mallory;');\n")
    assert sql_roles(dump) == ["Finance Admin", "postgres", "reader"]


def test_drill_target_config_rules() -> None:
    pg = PostgresSource.model_validate({"id": "p", "kind": "postgres", "dsn": "dbname=p"})
    assert drill_target(pg) == "same-server"
    my = MysqlSource.model_validate({"id": "m", "kind": "mysql", "database": "m",
                                     "drill_target": "local-instance"})
    assert drill_target(my) == "local-instance"
    with pytest.raises(ValidationError):
        PostgresSource.model_validate({"id": "p", "kind": "postgres", "dsn": "dbname=p",
                                       "drill_target": "elsewhere"})
    folder = {"id": "d", "kind": "dumpdir", "path": "/srv/dumps"}
    assert drill_kind(DumpdirSource.model_validate(folder)) is None
    assert drill_kind(DumpdirSource.model_validate(
        {**folder, "drill_target": "local-instance"})) == "db"
    with pytest.raises(ValidationError, match="leave it"):
        DumpdirSource.model_validate({**folder, "drill_target": "local-instance",
                                      "drill_postgres_dsn": "dbname=x"})


def test_leftover_processes_naming_a_stale_directory_are_stopped(tmp_path: Path) -> None:
    directory = tmp_path / "scratch" / "drill-3-db"
    directory.mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                              str(tmp_path / "scratch" / "drill-3-dbx" / "data")])
    # Ignores SIGTERM: needs the SIGKILL after the grace period.
    stubborn = subprocess.Popen([sys.executable, "-c",
                                 "import signal, time; signal.signal(signal.SIGTERM, "
                                 "signal.SIG_IGN); print('ready', flush=True); time.sleep(60)",
                                 f"--datadir={directory / 'data'}"], stdout=subprocess.PIPE)
    try:
        assert stubborn.stdout is not None and stubborn.stdout.readline() == b"ready\n"
        assert processes_under(directory) == [stubborn.pid]
        assert stop_servers_under(directory, timeout=0.5) == [stubborn.pid]
        assert stubborn.wait(10) == -9
        assert other.poll() is None  # a similar path is not inside the directory
    finally:
        for process in (other, stubborn):
            process.kill()
            process.wait()
    assert os.path.isdir(directory)


def test_config_check_names_the_source_whose_server_package_is_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from drbackup.config.models import Config
    from drbackup.verify.instance import missing_server_programs

    config = Config.model_validate({"agencies": [{
        "id": "planning", "password_file": "/etc/drbackup/planning.password", "sources": [
            {"id": "files", "kind": "directory", "paths": ["/srv"]},
            {"id": "permits", "kind": "postgres", "dsn": "dbname=p",
             "drill_target": "local-instance"},
            {"id": "plain", "kind": "postgres", "dsn": "dbname=p"},
            {"id": "licences", "kind": "mysql", "database": "l",
             "drill_target": "local-instance"}]}]})
    monkeypatch.setattr(instance, "PG_LIB", tmp_path / "none")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(instance, "_EXTRA_BIN_DIRS", ())
    problems = missing_server_programs(config)
    assert [key for key, _ in problems] == ["agencies[0].sources[1].drill_target",
                                            "agencies[0].sources[3].drill_target"]
    assert "postgresql package" in problems[0][1] and "mariadb-server" in problems[1][1]
    monkeypatch.undo()
    assert missing_server_programs(config) == []  # both installed on the test machine


def test_the_error_named_for_a_failed_server_start_is_the_cause_not_mariadbs_aborting(
        tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("Installing MariaDB/MySQL system tables in '/x/data' ...\n"
                   "2026-12-08  4:57:45 1 [Warning] Could not remove temporary table\n"
                   "ERROR: 1051  Unknown table 'mysql.tmp_user_sys'\n"
                   "2026-12-08  4:57:45 0 [ERROR] Aborting\n\n")
    assert instance._tail(log) == "ERROR: 1051  Unknown table 'mysql.tmp_user_sys'"
    log.write_text("2026-12-08  4:57:45 0 [ERROR] Aborting\n")
    assert instance._tail(log) == "2026-12-08  4:57:45 0 [ERROR] Aborting"
    log.write_text("starting\nready\n")
    assert instance._tail(log) == "ready"
    assert instance._tail(tmp_path / "absent", "no log") == "no log"
