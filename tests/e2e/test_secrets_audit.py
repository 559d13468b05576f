"""Secrets audit: a full cycle through the real CLI (repo init, backup of files and of a PostgreSQL
database, restore, restore-db, check, file and database drills, report, replication, recovery
kit) against the real S3 server
with a distinctive repository password and S3 secret key and the database's password, then a
search for all three in every place they must never be:
every spawned argv (sampled from /proc during the run), every log and output line, every state
row, every file written outside the secret files, and the S3 server's own log. Zero hits."""

from __future__ import annotations

import secrets
import sqlite3
import subprocess
from pathlib import Path

from tests.support.procs import ArgvSampler
from tests.support.servers import MotoServer, PostgresServer, free_port
from tests.support.trees import manifest
from tests.support.workspace import Workspace


def _make_data(root: Path) -> None:
    (root / "minutes").mkdir(parents=True)
    (root / "minutes" / "2026-11-20.md").write_text("# Council minutes\n" * 200)
    (root / "permits").mkdir()
    for index in range(50):
        (root / "permits" / f"permit-{index:03d}.txt").write_text(f"permit {index}\n" * 50)
    (root / "scan.bin").write_bytes(secrets.token_bytes(2 * 1024 * 1024))


def _files_outside_secrets(root: Path, skip: Path) -> list[Path]:
    return [path for path in root.rglob("*")
            if path.is_file() and not path.is_symlink() and skip not in path.parents]


def test_no_secret_leaks_anywhere(workspace: Workspace, s3_server: MotoServer, bucket: str,
                                  postgres_server: PostgresServer, tmp_path: Path) -> None:
    password = f"AUDIT-PW-{secrets.token_hex(12)}"
    secret_key = f"AUDIT-SK-{secrets.token_hex(12)}"
    needles = {"repository password": password, "S3 secret key": secret_key,
               "PostgreSQL password": postgres_server.password}
    database = postgres_server.create_database("audit")
    postgres_server.psql("CREATE TABLE permits (id int primary key, holder text);"
                         "INSERT INTO permits SELECT g, 'holder ' || g "
                         "FROM generate_series(1, 200) g;", database)
    restored_db = f"{database}_restored"

    data = tmp_path / "data"
    _make_data(data)
    workspace.add_s3_store("offsite", s3_server, bucket, secret_key=secret_key)
    workspace.add_s3_store("replica", s3_server, f"{bucket}-replica", secret_key=secret_key)
    workspace.add_agency("planning", store="offsite", password=password, replicas=["replica"])
    workspace.add_directory_source("planning", "documents", [data])
    pg_password = workspace.secret_file("pg.password", postgres_server.password + "\n")
    workspace.add_source("planning", "permits", "postgres", dsn=postgres_server.dsn(database),
                         password_file=str(pg_password),
                         **{"assert": ["SELECT count(*) = 200 FROM permits"]})
    # A second store that is down: failure paths (error messages, stderr tails) leak most often.
    dead = MotoServer(tmp_path / "dead", port=free_port())
    workspace.add_s3_store("dead", dead, "nowhere", secret_key=secret_key)
    workspace.add_agency("permits", store="dead", password=password)
    workspace.add_directory_source("permits", "files", [data / "permits"])

    results: list[subprocess.CompletedProcess[str]] = []

    def cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = workspace.cli("--debug", "--log-format", "json", *args, check=ok)
        results.append(result)
        return result

    restored = tmp_path / "restored"
    with ArgvSampler(interval=0.02) as sampler:
        cli("config", "check")
        cli("repo", "init", "--agency", "planning")
        cli("backup", "--agency", "planning")
        (data / "minutes" / "2026-11-27.md").write_text("# More minutes\n")
        cli("--json", "backup", "--agency", "planning")
        cli("--json", "snapshots", "--agency", "planning")
        cli("restore", "--agency", "planning", "--source", "documents", "--dry-run",
            "--target", str(tmp_path / "dry"))
        cli("restore", "--agency", "planning", "--source", "documents", "--target",
            str(restored))
        # Database dump (in the backups above), restore and drills; repository check.
        cli("restore-db", "--agency", "planning", "--source", "permits", "--into",
            restored_db, "--yes")
        cli("verify", "--agency", "planning", "--kind", "check")
        cli("verify", "--agency", "planning", "--kind", "files")
        cli("verify", "--agency", "planning", "--kind", "db")
        cli("report", "--agency", "planning")
        # Replication to a second bucket, and a recovery kit sealing every secret (encrypted:
        # the kit file must not hold any of them in clear).
        cli("replicate", "--agency", "planning")
        cli("recovery-kit", "keygen", "--out", str(tmp_path / "kit-keys" / "identity"))
        cli("recovery-kit", "create", "--recipient", str(tmp_path / "kit-keys" / "identity.pub"),
            "--agency", "planning", "--include-s3-credentials", "--no-upload", "--out",
            str(tmp_path / "kits"))
        # Failures: the store that is down, a wrong password, an unknown snapshot.
        assert cli("backup", "--agency", "permits", ok=False).returncode != 0
        assert cli("repo", "init", "--agency", "permits", ok=False).returncode != 0
        assert cli("restore", "--agency", "planning", "--source", "documents", "--snapshot",
                   "ffffffff", "--target", str(tmp_path / "none"), ok=False).returncode != 0
        workspace.secret_file("planning.password", "AUDIT-WRONG-password\n")
        assert cli("snapshots", "--agency", "planning", ok=False).returncode != 0
        workspace.secret_file("planning.password", password + "\n")
        # Every metric, computed from the state all of the above recorded.
        exposition = cli("metrics").stdout
        assert "drbackup_backup_last_success_timestamp_seconds" in exposition

    # The cycle really happened and really went through restic (the sampler saw it).
    assert manifest(restored / data.relative_to("/")) == manifest(data)
    assert postgres_server.query("SELECT count(*) FROM permits", restored_db) == "200"
    postgres_server.drop_database(restored_db)
    postgres_server.drop_database(database)
    assert sampler.commands_named("pg_dump") and sampler.commands_named("pg_restore")
    restic_verbs = {verb for argv in sampler.commands_named("restic") for verb in argv[1:]}
    assert {"backup", "restore", "snapshots", "init", "check", "copy"} <= restic_verbs, (
        restic_verbs)
    assert list((tmp_path / "kits").glob("*.kit")), "no recovery kit was written"

    leaks: list[str] = []
    for what, needle in needles.items():
        for argv in sampler.containing(needle):
            leaks.append(f"{what} in argv: {argv[:3]}...")
        for result in results:
            for stream, text in (("stdout", result.stdout), ("stderr", result.stderr)):
                if needle in text:
                    leaks.append(f"{what} in {stream} of {' '.join(result.args[3:6])}")
        state_db = workspace.state_dir / "state.db"
        with sqlite3.connect(state_db) as conn:
            for row in conn.iterdump():
                if needle in row:
                    leaks.append(f"{what} in state row: {row[:80]}")
        for path in _files_outside_secrets(workspace.root, workspace.root / "secrets"):
            if needle.encode() in path.read_bytes():
                leaks.append(f"{what} in file {path}")
        for path in _files_outside_secrets(tmp_path, workspace.root / "secrets"):
            if path.suffix == ".log" and needle.encode() in path.read_bytes():
                leaks.append(f"{what} in log file {path}")
        moto_log = s3_server.workdir / f"moto-{s3_server.port}.log"
        if moto_log.exists() and needle.encode() in moto_log.read_bytes():
            leaks.append(f"{what} in the S3 server's log")
    assert not leaks, "\n".join(leaks)
    # The audit looked at real material: logs were written and runs recorded.
    assert sum(len(r.stderr) for r in results) > 0
    with sqlite3.connect(workspace.state_dir / "state.db") as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] >= 5
