"""Benchmark: a PostgreSQL database backed up by drbackup (pg_dump -Fc -Z0 streamed through the
dump guard into restic) versus by hand (`pg_dump -Fc > file && restic backup file`), then a second
run after changing 1 % of the rows: wall time, ratio, bytes added.

    python -m bench.db_dump [--size-mb 1024] [--json]

Starts its own throwaway PostgreSQL 15 and local restic repositories in a temp dir."""

# ruff: noqa: S608 - benchmark SQL built from integers

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from drbackup.config import load_config
from drbackup.engine import BackupSummary
from drbackup.jobs.backup import run_backup
from drbackup.jobs.runtime import Runtime
from tests.support.servers import PG_BIN, PostgresServer
from tests.support.workspace import Workspace

ROW_BYTES = 240  # approximate on-disk size of one generated row


@dataclass
class Figures:
    size_mb: int
    database_bytes: int
    drbackup_seconds: float
    by_hand_seconds: float
    ratio: float
    dump_bytes: int
    # (data_added, data_added_packed): restic's new bytes before and after its compression
    drbackup_added_first: tuple[int, int]
    by_hand_added_first: tuple[int, int]
    drbackup_added_after_1pct_scattered: tuple[int, int]
    by_hand_added_after_1pct_scattered: tuple[int, int]
    drbackup_added_after_1pct_clustered: tuple[int, int]
    by_hand_added_after_1pct_clustered: tuple[int, int]


def _restic_env(repo: Path, password_file: Path, cache: Path) -> dict[str, str]:
    return {**os.environ, "RESTIC_REPOSITORY": str(repo), "RESTIC_PASSWORD_FILE":
            str(password_file), "RESTIC_CACHE_DIR": str(cache)}


def _by_hand(server: PostgresServer, database: str, work: Path, env: dict[str, str]
             ) -> tuple[float, tuple[int, int]]:
    """pg_dump -Fc > file && restic backup file; (seconds, (bytes added, packed))."""
    dump = work / f"{database}.pgdump"
    started = time.monotonic()
    with dump.open("wb") as handle:
        subprocess.run([str(PG_BIN / "pg_dump"), "-Fc", "-d", server.dsn(database)],
                       stdout=handle, env={**env, **server.env()}, check=True)
    done = subprocess.run(["restic", "--json", "backup", str(dump)], capture_output=True,
                          text=True, env=env, check=True)
    seconds = time.monotonic() - started
    added = (0, 0)
    for line in done.stdout.splitlines():
        if '"summary"' in line:
            summary = json.loads(line)
            added = (int(summary.get("data_added", 0)), int(summary.get("data_added_packed", 0)))
    dump.unlink()
    return seconds, added


def run(size_mb: int) -> Figures:
    root = Path(tempfile.mkdtemp(prefix="drbackup-bench-"))
    server = PostgresServer()
    try:
        server.start()
        database = server.create_database("bench")
        rows = size_mb * 1024 * 1024 // ROW_BYTES
        fill = ("CREATE TABLE docs (id bigint PRIMARY KEY, ref text, body text, "
                "n double precision); INSERT INTO docs SELECT g, md5(g::text), "
                "repeat(md5(random()::text), 5), random() FROM generate_series(1, ROWS) g; "
                "VACUUM ANALYZE docs;")
        server.psql(fill.replace("ROWS", str(rows)), database)
        database_bytes = int(server.query(f"SELECT pg_database_size('{database}')"))

        ws = Workspace(root / "ws")
        ws.add_agency("bench")
        password = ws.secret_file("pg.password", server.password + "\n")
        ws.add_source("bench", "db", "postgres", dsn=server.dsn(database),
                      password_file=str(password), timeout="6h")
        ws.cli("repo", "init", check=True)
        config = load_config(ws.write())
        agency = config.agency("bench")
        rt = Runtime.create(config)

        hand_repo = root / "hand-repo"
        env = _restic_env(hand_repo, Path(ws.agency("bench")["password_file"]), root / "cache")
        subprocess.run(["restic", "init"], env=env, check=True, capture_output=True)

        started = time.monotonic()
        first = run_backup(rt, agency, agency.source("db"))
        drbackup_seconds = time.monotonic() - started
        by_hand_seconds, hand_first = _by_hand(server, database, root, env)

        # 1 % of the rows, spread evenly (every 100th row) ...
        server.psql("UPDATE docs SET body = repeat(md5(random()::text), 5) WHERE id % 100 = 0",
                    database)
        scattered = run_backup(rt, agency, agency.source("db"))
        _seconds, hand_scattered = _by_hand(server, database, root, env)
        # ... and 1 % of the rows in one id range (recent records, one client's data).
        low = rows // 2
        server.psql("UPDATE docs SET body = repeat(md5(random()::text), 5) "
                    f"WHERE id BETWEEN {low} AND {low + rows // 100}", database)
        clustered = run_backup(rt, agency, agency.source("db"))
        _seconds, hand_clustered = _by_hand(server, database, root, env)
        record = rt.state.run(first.run_id)
        rt.close()
        return Figures(
            size_mb=size_mb, database_bytes=database_bytes,
            drbackup_seconds=round(drbackup_seconds, 2),
            by_hand_seconds=round(by_hand_seconds, 2),
            ratio=round(drbackup_seconds / by_hand_seconds, 3),
            dump_bytes=int(record.details.get("dump_bytes", 0)) if record else 0,
            drbackup_added_first=_added(first.summary), by_hand_added_first=hand_first,
            drbackup_added_after_1pct_scattered=_added(scattered.summary),
            by_hand_added_after_1pct_scattered=hand_scattered,
            drbackup_added_after_1pct_clustered=_added(clustered.summary),
            by_hand_added_after_1pct_clustered=hand_clustered)
    finally:
        server.destroy()
        shutil.rmtree(root, ignore_errors=True)


def _added(summary: BackupSummary) -> tuple[int, int]:
    return summary.data_added, summary.data_added_packed


def _mib(pair: tuple[int, int]) -> str:
    return f"{pair[0] / (1 << 20):.1f} MiB ({pair[1] / (1 << 20):.1f} MiB packed)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int,
                        default=int(os.environ.get("DRBACKUP_BENCH_DB_MB", "1024")))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = run(args.size_mb)
    if args.json:
        print(json.dumps(asdict(figures)))
        return
    mib = 1024 * 1024
    print(f"PostgreSQL dump+backup, {figures.database_bytes / mib:.0f} MiB database "
          f"(dump {figures.dump_bytes / mib:.0f} MiB uncompressed)")
    print(f"  drbackup: {figures.drbackup_seconds:.1f}s   by hand (pg_dump -Fc > file && restic "
          f"backup file): {figures.by_hand_seconds:.1f}s   ratio {figures.ratio:.2f}")
    print(f"  added, first run: drbackup {_mib(figures.drbackup_added_first)}, by hand "
          f"{_mib(figures.by_hand_added_first)}")
    print(f"  added after changing 1% of rows, scattered: drbackup "
          f"{_mib(figures.drbackup_added_after_1pct_scattered)}, by hand "
          f"{_mib(figures.by_hand_added_after_1pct_scattered)}")
    print(f"  added after changing 1% of rows, one id range: drbackup "
          f"{_mib(figures.drbackup_added_after_1pct_clustered)}, by hand "
          f"{_mib(figures.by_hand_added_after_1pct_clustered)}")


if __name__ == "__main__":
    main()
