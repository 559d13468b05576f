"""Replaying PostgreSQL globals onto a server warns, in one line and before anything changes,
when it would change the passwords of roles that exist there (#17 item 11); roles whose
password is the same (the restoring superuser's own among them), and roles the server does not
have yet, are not named."""

# ruff: noqa: S608 - test SQL built from our own generated names

from __future__ import annotations

import logging
import subprocess
import uuid
from pathlib import Path
from typing import IO

import pytest

from drbackup.config.models import PostgresSource
from drbackup.sources.pgglobals import role_passwords
from drbackup.sources.postgres import FORMAT_SQL, restore_postgres
from tests.support.servers import PostgresServer

EVENT = "globals_password_change"


def _verifier(server: PostgresServer, role: str) -> str:
    return server.query(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{role}'")


def test_globals_replay_warns_once_before_changing_existing_roles_passwords(
        postgres_server: PostgresServer, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    server = postgres_server
    tag = uuid.uuid4().hex[:8]
    rotated, same, gone = f"rotated_{tag}", f"same_{tag}", f"gone_{tag}"
    server.psql(f"CREATE ROLE {rotated} LOGIN PASSWORD 'old-{tag}'; "
                f"CREATE ROLE {same} LOGIN PASSWORD 'same-{tag}'; "
                f"CREATE ROLE {gone} LOGIN PASSWORD 'gone-{tag}';")
    try:
        dump = subprocess.run(
            ["pg_dumpall", "--globals-only", f"--dbname={server.dsn()}"],
            env=server.env(), capture_output=True, check=True).stdout
        assert {rotated, same, gone} <= set(role_passwords(dump))
        # Since the dump: one password rotated, one role dropped.
        server.psql(f"ALTER ROLE {rotated} PASSWORD 'new-{tag}'; DROP ROLE {gone};")
        rotated_now = _verifier(server, rotated)
        password = tmp_path / "pg.password"
        password.write_text(server.password + "\n")
        password.chmod(0o600)
        source = PostgresSource.model_validate({
            "id": "db", "kind": "postgres", "dsn": server.dsn(), "all": True,
            "password_file": str(password)})
        at_warning: list[str] = []

        class Spy(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if getattr(record, "event", None) == EVENT:
                    at_warning.append(_verifier(server, rotated))

        spy = Spy()
        logging.getLogger("drbackup").addHandler(spy)
        try:
            with caplog.at_level(logging.WARNING, logger="drbackup"):
                def feed(sink: IO[bytes]) -> None:
                    sink.write(dump)

                restore_postgres(source, "postgres", feed, dump_format=FORMAT_SQL)
        finally:
            logging.getLogger("drbackup").removeHandler(spy)
        warnings = [r for r in caplog.records if getattr(r, "event", None) == EVENT]
        assert len(warnings) == 1, caplog.text
        line = warnings[0].getMessage()
        assert "\n" not in line
        assert "changes the password of 1 existing role(s)" in line and rotated in line, line
        assert line.split(": ", 1)[1].split(" (the passwords")[0] == rotated, line
        # Warned before the replay changed anything; then the replay put the old one back.
        assert at_warning == [rotated_now]
        assert _verifier(server, rotated) != rotated_now
    finally:
        server.psql(f"DROP ROLE IF EXISTS {rotated}; DROP ROLE IF EXISTS {same}; "
                    f"DROP ROLE IF EXISTS {gone};")
