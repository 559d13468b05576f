"""Database restore drills into a throwaway local server (`drill_target = "local-instance"`),
against real PostgreSQL and MariaDB: the dump is restored into a private server the drill
starts in a scratch directory under state_dir (unix socket only), checked (tables, row counts,
assertions) and the server stopped and its directory removed, also when the drill fails. The
source's server never gets a scratch database. A server left by a killed drill is stopped and
removed by the next start's stale cleanup.

The suite runs as root here: PostgreSQL refuses root, so the PostgreSQL tests give the
workspace a state_dir owned by the `postgres` user (as the systemd unit's StateDirectory is
owned by the service user), and drbackup runs the instance as that owner."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from drbackup.errors import ExitCode
from drbackup.verify.instance import mariadb_instance
from drbackup.verify.leftovers import processes_under
from tests.support.dbcheck import LICENCES_SCHEMA, PERMITS_SCHEMA
from tests.support.servers import DB_TEST_USER, MariaDBServer, PostgresServer
from tests.support.workspace import Workspace

SCHEMA = PERMITS_SCHEMA
PG_COUNTS = {"public.permits": 2000, "public.inspections": 500, "public.archive": 0}


@pytest.fixture
def service_state_dir(workspace: Workspace) -> Iterator[Path]:
    """A state_dir owned by a non-root user (`postgres` when the tests run as root), in a
    short path under /tmp that user can reach (pytest's tmp dirs are root-only and, under
    xdist, too long for a unix socket path inside them)."""
    state = Path(tempfile.mkdtemp(prefix="drb-st-"))
    if os.geteuid() == 0:
        shutil.chown(state, "postgres", "postgres")
    workspace.config["daemon"]["state_dir"] = str(state)
    try:
        yield state
    finally:
        for pid in processes_under(state):  # a failed assertion must not leave a server
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(state, ignore_errors=True)


def _verify(workspace: Workspace, *args: str) -> tuple[int, dict[str, Any]]:
    result = workspace.cli("verify", "--agency", "planning", "--json", "--kind", "db", *args)
    assert result.stdout.strip(), result.stderr
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout)


def _report(drill: dict[str, Any]) -> dict[str, Any]:
    return json.loads(Path(drill["report"]).read_text())["report"]  # type: ignore[no-any-return]


def _nothing_left(state_dir: Path) -> None:
    scratch = state_dir / "scratch"
    assert not scratch.exists() or sorted(p.name for p in scratch.iterdir()) == []
    assert processes_under(state_dir) == []


def _pg_drill_databases(server: PostgresServer) -> list[str]:
    return server.query("SELECT datname FROM pg_database WHERE datname LIKE "
                        "'drbackup_drill_%'").split()


def _my_drill_databases(server: MariaDBServer) -> list[str]:
    return [d for d in server.query("SHOW DATABASES").split() if d.startswith("drbackup_drill_")]


def _start_verify(workspace: Workspace, *args: str) -> subprocess.Popen[str]:
    workspace.write()
    return subprocess.Popen(
        [*workspace.cli_argv(), "verify", "--agency", "planning", "--kind", "db", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=workspace.env())


def _wait_for_instance(state_dir: Path, socket_name: str, process: subprocess.Popen[str]
                       ) -> Path:
    """The drill's instance directory once its server accepts connections (generous wait)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = list((state_dir / "scratch").glob(f"drill-*-db/{socket_name}"))
        if found:
            return found[0].parent
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("the drill's instance did not start")


def _kill_mid_drill(workspace: Workspace, socket_name: str, secret: str,
                    no_scratch_db_on_source: Any) -> tuple[Path, list[int]]:
    """Start a drill whose assertion sleeps, SIGKILL drbackup while the instance serves it;
    returns the instance directory and its (still running) server pids."""
    process = _start_verify(workspace, "--source", "slow")
    try:
        directory = _wait_for_instance(workspace.state_dir, socket_name, process)
        # Mid-drill: the dump is being restored/checked in the instance, not on the source.
        no_scratch_db_on_source()
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    pids = processes_under(directory)
    assert pids, "the killed drill's server should still run"
    read = 0
    for pid in pids:  # the server got nothing of the source's credentials
        try:  # the backend that served the killed drill may exit meanwhile
            environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
        except (ProcessLookupError, FileNotFoundError):
            continue
        read += 1
        assert secret not in environ
        assert "PGPASSFILE" not in environ and "PGPASSWORD" not in environ
    assert read, "the killed drill's server should still run"
    for log in directory.glob("*.log"):  # nor its logs
        assert secret not in log.read_text(errors="replace")
    assert list(directory.glob("*.log")), "the instance writes its log in its directory"
    return directory, pids


def _gone(pids: list[int]) -> bool:
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state != "Z":
            return False
    return True


def test_postgres_local_instance_drills_pass_fail_clean_up_and_survive_a_kill(
        workspace: Workspace, service_state_dir: Path, postgres_server: PostgresServer,
        tmp_path: Path) -> None:
    database = postgres_server.create_database("permits")
    try:
        postgres_server.psql(SCHEMA, database)
        password = workspace.secret_file("pg.password", postgres_server.password + "\n")
        # A plain SQL dump in a drop folder: it names the source's roles (OWNER TO postgres),
        # which the fresh instance lacks until the drill creates them.
        folder = tmp_path / "dumps"
        folder.mkdir()
        plain = subprocess.run(
            ["pg_dump", "--format=plain", f"--dbname={postgres_server.dsn(database)}"],
            env=postgres_server.env(), capture_output=True, check=True).stdout
        assert b"OWNER TO postgres;" in plain
        (folder / "permits.sql").write_bytes(plain)
        # A truncated custom-format dump in another folder: it does not restore.
        cut_folder = tmp_path / "cut"
        cut_folder.mkdir()
        full = subprocess.run(
            ["pg_dump", "--format=custom", "--compress=0",
             f"--dbname={postgres_server.dsn(database)}"],
            env=postgres_server.env(), capture_output=True, check=True).stdout
        (cut_folder / "permits.pgdump").write_bytes(full[: len(full) * 2 // 3])
        workspace.add_agency("planning")
        common = {"dsn": postgres_server.dsn(database), "password_file": str(password),
                  "drill_target": "local-instance"}
        workspace.add_source("planning", "permits", "postgres", **common, **{"assert": [
            "SELECT count(*) = 2000 FROM permits", "SELECT count(*) = 500 FROM inspections",
            # The instance has no TCP listener, and the dump's SQL does not run as superuser.
            "SELECT current_setting('listen_addresses') = ''",
            "SELECT NOT rolsuper FROM pg_roles WHERE rolname = current_user"]})
        workspace.add_source("planning", "slow", "postgres", **common,
                             **{"assert": ["SELECT count(*) > 5000 FROM permits"]})
        workspace.add_source("planning", "dumps", "dumpdir", path=str(folder), settle="0s",
                             drill_target="local-instance",
                             **{"assert": ["SELECT count(*) = 2000 FROM permits"]})
        workspace.add_source("planning", "cut", "dumpdir", path=str(cut_folder), settle="0s",
                             drill_target="local-instance")
        workspace.cli("repo", "init", check=True)
        workspace.cli("backup", "--agency", "planning", check=True)
        assert _pg_drill_databases(postgres_server) == []

        code, outcome = _verify(workspace)
        assert code == ExitCode.VERIFY_FAILED, outcome
        good, bad, dumps, cut = outcome["drills"]
        assert good["verdict"] == "pass", good
        assert {t["table"]: t["rows"] for t in good["tables"]} == PG_COUNTS
        report = _report(good)
        assert report["drill_target"] == "local-instance"
        assert report["drill_instance"]["engine"] == "postgresql"
        assert report["drill_instance"]["run_as"] == ("postgres" if os.geteuid() == 0
                                                      else report["drill_instance"]["run_as"])
        [entry] = report["databases"]
        assert entry["drill_target"] == "local-instance"
        assert all(a["ok"] for a in entry["assertions"])
        # A failing assertion fails the drill, naming it.
        assert bad["verdict"] == "fail"
        assert any("assertion failed: SELECT count(*) > 5000 FROM permits returned f" in r
                   for r in bad["reasons"]), bad
        assert {t["table"]: t["rows"] for t in bad["tables"]} == PG_COUNTS
        # The plain dump restored with its owners' roles created in the instance.
        assert dumps["verdict"] == "pass", dumps
        assert {t["table"]: t["rows"] for t in dumps["tables"]} == PG_COUNTS
        # A dump that does not restore fails with pg_restore's words.
        assert cut["verdict"] == "fail"
        assert any("permits.pgdump: the dump does not restore" in r for r in cut["reasons"]), cut
        # Nothing on the source's server, nothing left on disk or running.
        assert _pg_drill_databases(postgres_server) == []
        _nothing_left(service_state_dir)
        for drill in (good, bad, dumps, cut):
            assert postgres_server.password not in Path(drill["report"]).read_text()
        # The run details say where the drill restored.
        with sqlite3.connect(service_state_dir / "state.db") as db:
            rows = [json.loads(r[0]) for r in db.execute(
                "SELECT details FROM runs WHERE job = 'drill' ORDER BY id")]
        assert [d["drill_target"] for d in rows] == ["local-instance"] * 4
        assert {d["drill_instance"]["engine"] for d in rows} == {"postgresql"}
        assert postgres_server.password not in json.dumps(rows)

        # Killed mid-drill (its assertion sleeps in the instance): the server outlives it...
        workspace.agency("planning")["sources"][1]["assert"] = [
            "SELECT pg_sleep(120) IS NOT NULL"]
        directory, pids = _kill_mid_drill(
            workspace, ".s.PGSQL.5432", postgres_server.password,
            lambda: _pg_drill_databases(postgres_server) == [] or pytest.fail("scratch db"))
        # ... and the next start stops it and removes its directory, then drills normally.
        workspace.agency("planning")["sources"][1]["assert"] = [
            "SELECT count(*) = 2000 FROM permits"]
        code, outcome = _verify(workspace, "--source", "slow")
        assert code == 0, outcome
        assert _gone(pids)
        assert not directory.exists()
        _nothing_left(service_state_dir)
        assert _pg_drill_databases(postgres_server) == []
    finally:
        postgres_server.drop_database(database)


def test_mariadb_local_instance_drills_pass_fail_clean_up_and_survive_a_kill(
        workspace: Workspace, service_state_dir: Path, mariadb_server: MariaDBServer) -> None:
    database = mariadb_server.create_database("licences")
    try:
        mariadb_server.sql(LICENCES_SCHEMA, database)
        password = workspace.secret_file("my.password", mariadb_server.password + "\n")
        workspace.add_agency("planning")
        common = {"database": database, "host": "127.0.0.1", "port": mariadb_server.port,
                  "user": DB_TEST_USER, "password_file": str(password),
                  "drill_target": "local-instance"}
        workspace.add_source("planning", "licences", "mysql", **common, **{"assert": [
            "SELECT COUNT(*) = 3 FROM licences",
            # No TCP listener; file access confined to the instance's own directory.
            "SELECT @@skip_networking = 1 AND @@port = 0",
            f"SELECT @@secure_file_priv LIKE '{service_state_dir}/scratch/drill-%-db/files/'"]})
        workspace.add_source("planning", "slow", "mysql", **common,
                             **{"assert": ["SELECT COUNT(*) = 4 FROM licences"]})
        workspace.cli("repo", "init", check=True)
        workspace.cli("backup", "--agency", "planning", check=True)
        assert _my_drill_databases(mariadb_server) == []

        code, outcome = _verify(workspace)
        assert code == ExitCode.VERIFY_FAILED, outcome
        good, bad = outcome["drills"]
        assert good["verdict"] == "pass", good
        assert {t["table"]: t["rows"] for t in good["tables"]} == {"licences": 3,
                                                                   "empty_one": 0}
        report = _report(good)
        assert report["drill_target"] == "local-instance"
        assert report["drill_instance"]["engine"] == "mariadb"
        assert bad["verdict"] == "fail"
        assert any("assertion failed: SELECT COUNT(*) = 4 FROM licences returned 0" in r
                   for r in bad["reasons"]), bad
        assert _my_drill_databases(mariadb_server) == []
        _nothing_left(service_state_dir)
        assert mariadb_server.password not in Path(good["report"]).read_text()

        workspace.agency("planning")["sources"][1]["assert"] = ["SELECT SLEEP(120) = 0"]
        directory, pids = _kill_mid_drill(
            workspace, "mariadb.sock", mariadb_server.password,
            lambda: _my_drill_databases(mariadb_server) == [] or pytest.fail("scratch db"))
        workspace.agency("planning")["sources"][1]["assert"] = [
            "SELECT COUNT(*) = 3 FROM licences"]
        code, outcome = _verify(workspace, "--source", "slow")
        assert code == 0, outcome
        assert _gone(pids)
        assert not directory.exists()
        _nothing_left(service_state_dir)
    finally:
        mariadb_server.drop_database(database)


def _instance_answers(directory: Path) -> str:
    with mariadb_instance(directory) as instance:
        done = subprocess.run(["mariadb", "--no-defaults", f"--socket={instance.socket}",
                               "-uroot", "-N", "-e", "SELECT COUNT(*) FROM mysql.user"],
                              capture_output=True, text=True, check=True)
        return done.stdout.strip()


def test_mariadb_drill_instances_started_at_once_all_come_up() -> None:
    """A starting mariadbd removes every #sql* file in its tmpdir. With install-db's bootstrap
    in the shared /tmp, drills (or the host's server) starting together removed each other's
    temporary tables: install-db aborted (a clean-clone make test failed so; 9 of 16 at once
    here). Each instance keeps its temporary files in its own directory."""
    roots = [Path(tempfile.mkdtemp(prefix="drb-at-")) for _ in range(8)]
    try:
        with ThreadPoolExecutor(len(roots)) as pool:
            answers = list(pool.map(_instance_answers, roots))
        assert all(answer.isdigit() and int(answer) > 0 for answer in answers), answers
        assert all(not any((root / "tmp").iterdir()) for root in roots)
    finally:
        for root in roots:
            for pid in processes_under(root):
                os.kill(pid, signal.SIGKILL)
            shutil.rmtree(root, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="the refusal concerns drbackup running as root")
def test_postgres_local_instance_as_root_with_root_owned_state_dir_is_a_one_line_error(
        workspace: Workspace) -> None:
    workspace.add_agency("planning")
    workspace.add_source("planning", "permits", "postgres",
                         dsn="postgresql://nobody@127.0.0.1:1/permits",
                         drill_target="local-instance")
    workspace.cli("repo", "init", check=True)
    result = workspace.cli("verify", "--agency", "planning", "--kind", "db")
    assert result.returncode == ExitCode.CONFIG, (result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    assert any("PostgreSQL refuses to run as root" in line and "state_dir" in line
               for line in errors), result.stderr
    assert any('drill_target = "same-server"' in line for line in errors), result.stderr


def test_a_dump_cannot_borrow_built_in_roles_to_run_programs_or_read_files_in_a_drill(
        workspace: Workspace, service_state_dir: Path, postgres_server: PostgresServer,
        tmp_path: Path) -> None:
    """#14 hole 2. The drill used to grant every role a plain dump names to its restore role,
    as superuser: `OWNER TO pg_execute_server_program` then `COPY ... FROM PROGRAM` ran a shell
    command as the service user (which reads every agency's password), and the drill passed.
    Now no role that exists in the instance (built-in pg_* roles, the superuser) is granted: the
    dump is refused, naming the roles; a grant the dump tries itself fails (the restore role
    holds no ADMIN); no command runs, no file is read."""
    reach = Path(tempfile.mkdtemp(prefix="drb-pg-"))  # where the server's user could write
    if os.geteuid() == 0:
        shutil.chown(reach, "postgres", "postgres")
    secret = reach / "other-agency.password"
    secret.write_text("other-agency-secret-4711\n")
    secret.chmod(0o600)
    if os.geteuid() == 0:
        shutil.chown(secret, "postgres", "postgres")
    marker = reach / "program-ran"
    dumps = {
        "program": (f"CREATE TABLE loot (line text);\n"
                    f"ALTER TABLE loot OWNER TO pg_execute_server_program;\n"
                    f"COPY loot FROM PROGRAM 'touch {marker}; cat {secret}';\n"),
        "files": (f"CREATE TABLE loot (line text);\n"
                  f"ALTER TABLE loot OWNER TO pg_read_server_files;\n"
                  f"COPY loot FROM '{secret}';\n"),
        "superuser": ("CREATE TABLE loot (line text);\n"
                      "ALTER TABLE loot OWNER TO drbackup;\n"
                      f"COPY loot FROM PROGRAM 'touch {marker}';\n"),
        # Not on one line, so not seen as a role to prepare: the dump grants it itself.
        "self-grant": (f"CREATE TABLE loot (line text);\n"
                       f"GRANT pg_execute_server_program\n  TO drbackup_restore;\n"
                       f"COPY loot FROM PROGRAM 'touch {marker}';\n"),
    }
    workspace.add_agency("planning")
    for name, sql in dumps.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / f"{name}.sql").write_text(sql)
        workspace.add_source("planning", name, "dumpdir", path=str(folder), settle="0s",
                             drill_target="local-instance")
    try:
        workspace.cli("repo", "init", check=True)
        workspace.cli("backup", "--agency", "planning", check=True)
        code, outcome = _verify(workspace)
        assert code == ExitCode.VERIFY_FAILED, outcome
        verdicts = {d["source"]: d for d in outcome["drills"]}
        assert {s: d["verdict"] for s, d in verdicts.items()} == dict.fromkeys(dumps, "fail")
        for name, role in [("program", "pg_execute_server_program"),
                           ("files", "pg_read_server_files"), ("superuser", "drbackup")]:
            assert any(f"privileged or built-in roles ({role})" in r
                       for r in verdicts[name]["reasons"]), verdicts[name]["reasons"]
        assert any("does not restore" in r for r in verdicts["self-grant"]["reasons"])
        assert not marker.exists()
        evidence = "".join(Path(d["report"]).read_text() for d in outcome["drills"])
        assert "other-agency-secret-4711" not in evidence
        _nothing_left(workspace.state_dir)
    finally:
        shutil.rmtree(reach, ignore_errors=True)
