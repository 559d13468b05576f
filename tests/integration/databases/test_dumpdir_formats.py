"""A drop folder's dump is restored by what it holds, not by its name (#17 item 6): a
`pg_dump -Fd` directory is backed up as one dump (streamed as a tar), drilled, and restored
as the directory it was; a valid
`pg_dump -Ft` tar, a gzipped plain dump (`*.sql.gz`, the example config's own pattern) and gzip
of a custom and a tar dump go through the drill's own restore of one dump; each comes back with
the same rows as the database it was dumped from. A file of no dump format fails its drill as
"unsupported format", not as a damaged dump."""

# ruff: noqa: S608 - test SQL built from our own generated names

from __future__ import annotations

import gzip
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drbackup.config import load_config
from drbackup.config.models import AgencyConfig, DumpdirSource
from drbackup.jobs.backup import run_backup
from drbackup.jobs.drills import drill_source
from drbackup.jobs.drills.common import DrillRecord
from drbackup.jobs.drills.database import DumpJob
from drbackup.jobs.drills.postgres import restore_dump
from drbackup.jobs.repository import init_repository
from drbackup.jobs.restore import restore_snapshot
from drbackup.jobs.runtime import Runtime
from tests.support.dbcheck import PERMITS_SCHEMA, local_snapshots
from tests.support.servers import PostgresServer
from tests.support.workspace import Workspace

CONTENT = {
    "permits": "md5(string_agg(id || ':' || holder, ',' ORDER BY id))",
    "inspections": "md5(string_agg(id || ':' || permit || ':' || note, ',' ORDER BY id))",
}


@pytest.fixture
def permits_db(postgres_server: PostgresServer) -> Iterator[str]:
    name = postgres_server.create_database("permits")
    postgres_server.psql(PERMITS_SCHEMA, name)
    yield name
    postgres_server.drop_database(name)


@pytest.fixture
def dumps(workspace: Workspace, postgres_server: PostgresServer, permits_db: str,
          tmp_path: Path) -> Iterator[tuple[Runtime, AgencyConfig, DumpdirSource, Path]]:
    """Agency "planning" whose drop folder is drilled on the server, its repository
    initialised, with assertions that hold only for the dumped rows."""
    server = postgres_server
    folder = tmp_path / "dumps"
    folder.mkdir()
    assertions = [f"SELECT {expr} = '{server.query(f'SELECT {expr} FROM {table}', permits_db)}'"
                  f" FROM {table}" for table, expr in CONTENT.items()]
    password = workspace.secret_file("pg.password", server.password + "\n")
    workspace.add_agency("planning")
    workspace.add_source("planning", "dumps", "dumpdir", path=str(folder), settle="0s",
                         drill_postgres_dsn=server.dsn("postgres"),
                         drill_password_file=str(password), **{"assert": assertions})
    config = load_config(workspace.write())
    agency = config.agency("planning")
    source = agency.source("dumps")
    assert isinstance(source, DumpdirSource)
    rt = Runtime.create(config)
    try:
        init_repository(rt, agency)
        yield rt, agency, source, folder
    finally:
        rt.close()


def _pg_dump(server: PostgresServer, database: str, *args: str) -> bytes:
    return subprocess.run(["pg_dump", *args, f"--dbname={server.dsn(database)}"],
                          env=server.env(), capture_output=True, check=True).stdout


def _check_entry(entry: dict[str, Any], expected_format: str) -> None:
    assert entry["verdict"] == "pass", entry
    assert entry["format"] == expected_format, entry
    counts = {t["table"]: t["rows"] for t in entry["tables"]}
    assert counts == {"public.permits": 2000, "public.inspections": 500, "public.archive": 0}
    assert entry["expected_tables"] == sorted(counts), entry
    assert [a["ok"] for a in entry["assertions"]] == [True, True], entry


def _report(outcome: Any) -> dict[str, Any]:
    entry: dict[str, Any] = json.loads(Path(outcome.report.path).read_text())["report"]
    return entry


def test_a_directory_dump_in_a_drop_folder_is_backed_up_drilled_and_restored_with_equal_content(
        dumps: tuple[Runtime, AgencyConfig, DumpdirSource, Path],
        postgres_server: PostgresServer, permits_db: str, workspace: Workspace,
        tmp_path: Path) -> None:
    rt, agency, source, folder = dumps
    path = folder / "permits.dir"
    _pg_dump(postgres_server, permits_db, "--format=directory", f"--file={path}")
    for item in [*path.iterdir(), path]:
        os.utime(item, (1_700_000_000, 1_700_000_000))
    backup = run_backup(rt, agency, source)
    assert backup.result == "success", backup
    [snapshot] = local_snapshots(workspace.state_dir, "planning",
                                 Path(workspace.agency("planning")["password_file"]),
                                 rt.config.daemon.restic)
    assert {"file=permits.dir", "format=directory"} <= set(snapshot.tags)
    assert snapshot.paths == ["/permits.dir.tar"]
    drill = drill_source(rt, agency, source)
    assert drill.verdict == "pass", drill.reasons
    [entry] = _report(drill)["databases"]
    _check_entry(entry, "directory")

    # `drbackup restore` gives back the directory as it was dropped, ready for pg_restore -Fd.
    target = tmp_path / "restored"
    restore_snapshot(rt, agency, snapshot, target)
    restored = target / "permits.dir"
    assert sorted(p.name for p in restored.iterdir()) == sorted(
        p.name for p in path.iterdir())
    assert all((restored / p.name).read_bytes() == p.read_bytes() for p in path.iterdir())
    assert not (target / "permits.dir.tar").exists()
    copy = postgres_server.create_database("copy")
    try:
        subprocess.run(["pg_restore", "--format=directory", "--exit-on-error",
                        f"--dbname={postgres_server.dsn(copy)}", str(restored)],
                       env=postgres_server.env(), check=True, capture_output=True)
        for table, expr in CONTENT.items():
            assert postgres_server.query(f"SELECT {expr} FROM {table}", copy) == \
                postgres_server.query(f"SELECT {expr} FROM {table}", permits_db)
    finally:
        postgres_server.drop_database(copy)


def test_tar_gzip_and_unknown_dumps_restore_by_their_content(
        dumps: tuple[Runtime, AgencyConfig, DumpdirSource, Path],
        postgres_server: PostgresServer, permits_db: str, tmp_path: Path) -> None:
    """The drill's restore of one fetched dump (what `verify` runs after `restic dump`)."""
    rt, agency, source, _folder = dumps
    plain = _pg_dump(postgres_server, permits_db, "--format=plain")
    tar = _pg_dump(postgres_server, permits_db, "--format=tar")
    cases = [("permits.tar", tar, "tar"),
             ("permits.sql.gz", gzip.compress(plain), "sql+gzip"),
             ("permits.dump.gz", gzip.compress(
                 _pg_dump(postgres_server, permits_db, "--format=custom")), "custom+gzip"),
             ("permits.tar.gz", gzip.compress(tar), "tar+gzip"),
             ("notes.bin", b"PK\x03\x04" + os.urandom(4000), "unsupported")]
    for index, (name, data, expected_format) in enumerate(cases):
        scratch = tmp_path / f"scratch-{index}"
        scratch.mkdir()
        dump = scratch / "dump-0"
        dump.write_bytes(data)
        entry: dict[str, Any] = {}
        record = DrillRecord(kind="db")
        restore_dump(DumpJob(rt, agency, source, dump, f"/{name}", None, scratch, 9000 + index,
                             0, None, entry, record))
        if expected_format != "unsupported":
            assert record.reasons == [], (name, record.reasons)
            _check_entry(entry, expected_format)
            continue
        # Not a dump at all: its own verdict, in one line, never "damaged".
        assert entry["verdict"] == "fail" and entry["format"] == "unsupported"
        [reason] = record.reasons
        assert reason.startswith("notes.bin: unsupported format:"), reason
        assert "damaged" not in reason and "\n" not in reason
        assert postgres_server.query(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'drbackup_drill_900%'") == "0"
