"""Fuzz (#14): plain SQL dumps drawn from a grammar of psql meta-commands, written every way a
dump could hide them (leading blanks, after a statement, inside COPY data, behind a spoofed
`\\unrestrict`, with the dump's own `\\restrict` pair), replayed through drbackup's real replay
path (drbackup.sources.sqlreplay, real psql, the real test server). Invariant on every case:
no meta-command runs (its marker file never appears), and the replay either restores or fails
with a DumpError, never a traceback. Beside it, the drill's role rule on drawn role names:
a role that exists or is built in is never among those the drill would grant."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from hypothesis import strategies as st

from drbackup.config.models import PostgresSource
from drbackup.jobs.drills.postgres import privileged_roles
from drbackup.sources.base import DumpError
from drbackup.sources.postgres import connect
from drbackup.sources.sqlreplay import replay_sql
from tests.support.fuzz import fuzz_pair
from tests.support.servers import PostgresServer

MARKER_DIR = Path(tempfile.mkdtemp(prefix="drb-fuzz-pg-"))


def _meta_commands(marker: Path) -> list[str]:
    target = str(marker)
    return [
        f"\\! touch {target}", f"\\o |touch {target}", f"\\o {target}", f"\\w {target}",
        f"\\g |touch {target}", f"SELECT 1 \\g {target}", f"\\copy (SELECT 1) TO '{target}'",
        f"\\copy (SELECT 1) TO PROGRAM 'touch {target}'", f"\\setenv X 1\n\\! touch {target}",
        f"\\set x `touch {target}`", f"\\i {target}", f"\\ir {target}",
        f"SELECT 'touch {target}' \\gexec", f"\\unrestrict guess\n\\! touch {target}",
        f"\\restrict k\n\\unrestrict k\n\\! touch {target}", f"   \\! touch {target}",
        f"SELECT 1; \\! touch {target}", f"-- comment\n\\! touch {target}",
    ]


BENIGN = ["CREATE TABLE IF NOT EXISTS t (line text);", "INSERT INTO t VALUES ('a');",
          "SELECT 1;", "SET client_encoding = 'UTF8';", "-- a comment",
          "COPY t (line) FROM stdin;\nrow one\n\\\\! touch nothing\n\\.",
          "\\restrict Abc123", "\\unrestrict Abc123", ""]


@st.composite
def hostile_dumps(draw: st.DrawFn) -> tuple[bytes, Path]:
    marker = MARKER_DIR / f"ran-{draw(st.integers(0, 10**9))}"
    pieces = draw(st.lists(st.sampled_from(BENIGN), max_size=4))
    attacks = draw(st.lists(st.sampled_from(_meta_commands(marker)), min_size=1, max_size=3))
    for attack in attacks:
        pieces.insert(draw(st.integers(0, len(pieces))), attack)
    ending = draw(st.sampled_from(["\n", "", "\r\n"]))
    return ("\n".join(pieces) + ending).encode(), marker


@pytest.fixture(scope="module")
def scratch(postgres_server: PostgresServer) -> Iterator[tuple[PostgresServer, str]]:
    name = postgres_server.create_database("fuzz")
    yield postgres_server, name
    postgres_server.drop_database(name)


def _replay(server: PostgresServer, database: str, dump: bytes) -> None:
    source = PostgresSource.model_validate({"id": "fuzz", "kind": "postgres",
                                            "dsn": server.dsn(database)})
    conn = connect(source)
    try:
        def feed(sink: IO[bytes]) -> None:
            sink.write(dump)

        replay_sql(conn.tool("psql"), ["-v", "ON_ERROR_STOP=1", "-d", server.dsn(database)],
                   server.env(), feed, what="fuzz replay")
    finally:
        conn.cleanup()


def _no_meta_command_runs(scratch: tuple[PostgresServer, str],
                          case: tuple[bytes, Path]) -> None:
    server, database = scratch
    dump, marker = case
    with contextlib.suppress(DumpError):  # refused or failed: fine, as long as nothing ran
        _replay(server, database, dump)
    assert not marker.exists(), dump


test_meta_commands_never_run, test_meta_commands_never_run_long = fuzz_pair(
    _no_meta_command_runs, hostile_dumps(), examples=25)

ROLE_NAMES = st.sampled_from(["pg_execute_server_program", "pg_read_server_files",
                              "pg_write_server_files", "pg_monitor", "drbackup", "postgres",
                              "pg_database_owner", "drbackup_restore", "planner", "PG_X"]) | \
    st.text(st.sampled_from("abpg_ \"'"), min_size=1, max_size=12)


def _never_grants_an_existing_or_built_in_role(roles: list[str], existing: list[str]) -> None:
    refused = set(privileged_roles(roles, set(existing)))
    granted = {r for r in roles if r not in refused
               and r not in ("pg_database_owner", "drbackup_restore")}
    assert not {r for r in granted if r in existing or r.startswith("pg_")}


test_role_rule, test_role_rule_long = fuzz_pair(
    _never_grants_an_existing_or_built_in_role, st.lists(ROLE_NAMES, max_size=6),
    st.lists(ROLE_NAMES, max_size=6), examples=200)
