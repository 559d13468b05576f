"""Metrics from state, end to end: a state database filled by real backups (a directory and a
SQLite dump), real failed backups, a real structure check, a real file restore drill and a real
replication (the real CLI, real restic, the real moto S3 server), served by the standalone
exporter (`drbackup metrics --serve`): its scrape passes `promtool check metrics`, a new exporter
process on the same state reports the same values, and scrapes start no process.

The daemon and a real Prometheus running every dashboard query: test_metrics_daemon.py.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import tomli_w

from tests.support.metrics import parse, scrape
from tests.support.servers import MotoServer
from tests.support.workspace import Workspace


def populate(root: Path, restic_binary: str, s3_server: MotoServer) -> Workspace:
    """One agency on S3 with a replica: real successful backups (a directory, a SQLite dump),
    two real failed backups (missing source path), a real `repo stats`, a real structure check
    and file drill, and a real replication to the replica."""
    ws = Workspace(root / "ws")
    ws.config["daemon"]["restic"] = restic_binary
    data = root / "data"
    (data / "sub").mkdir(parents=True)
    for index in range(20):
        (data / "sub" / f"file-{index}.txt").write_text(f"record {index}\n" * 200)
    tag = os.urandom(4).hex()
    ws.add_s3_store("offsite", s3_server, f"metrics-{tag}-primary")
    ws.add_s3_store("archive", s3_server, f"metrics-{tag}-archive")
    ws.add_agency("planning", store="offsite", replicas=["archive"], rpo="2s", rto="1h")
    ws.add_directory_source("planning", "documents", [data])
    ws.add_directory_source("planning", "broken", [root / "missing"])
    registry = root / "registry.sqlite"
    with sqlite3.connect(registry) as db:
        db.execute("CREATE TABLE permits (id INTEGER PRIMARY KEY, holder TEXT)")
        db.executemany("INSERT INTO permits (holder) VALUES (?)",
                       [(f"holder {i}",) for i in range(500)])
    ws.agency("planning")["sources"].append(
        {"id": "registry", "kind": "sqlite", "path": str(registry)})
    ws.cli("repo", "init", "--agency", "planning", "--store", "offsite", check=True)
    for source in ("documents", "registry"):  # a directory and a database dump
        ws.cli("backup", "--agency", "planning", "--source", source, "--no-progress",
               check=True)
    for _ in range(2):
        failed = ws.cli("backup", "--agency", "planning", "--source", "broken", "--no-progress")
        assert failed.returncode == 13, failed.stderr
    ws.cli("repo", "stats", "--agency", "planning", "--store", "offsite", check=True)
    # verification (on main): a structure check and a file restore drill, both real
    ws.cli("verify", "--agency", "planning", "--kind", "check", "--structure-only", check=True)
    ws.cli("verify", "--agency", "planning", "--source", "documents", "--kind", "files",
           check=True)

    # replication (offsite, on main): copy to the replica, then measure what it lacks
    ws.cli("replicate", "--agency", "planning", check=True)
    return ws


@contextmanager
def exporter_process(config_path: Path, env: dict[str, str], log: Path
                     ) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`drbackup metrics --serve` as its own process; yields it and its /metrics URL."""
    with log.open("a") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "drbackup", "--config", str(config_path), "metrics",
             "--serve"], stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("serving "):
            process.kill()
            raise AssertionError(f"exporter did not start: {line!r} {log.read_text()}")
        yield process, line.split()[1]
    finally:
        process.terminate()
        process.wait(15)


def check_promtool_on_a_real_scrape(populated: Workspace) -> None:
    with exporter_process(populated.write(), populated.env(),
                          populated.root / "exporter.log") as (_, url):
        body = scrape(url)
    lint = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True,
                          text=True, timeout=60)
    assert (lint.returncode, lint.stdout + lint.stderr) == (0, "")
    values = parse(body)
    docs = '{agency="planning",source="documents"}'
    assert values[f"drbackup_backup_last_success_timestamp_seconds{docs}"] > 0
    assert values['drbackup_backup_consecutive_failures{agency="planning",source="broken"}'] == 2
    assert values['drbackup_backup_runs_total{agency="planning",result="failed",'
                  'source="broken"}'] == 2
    assert values['drbackup_snapshots{agency="planning",store="offsite"}'] == 2
    assert values['drbackup_repository_size_bytes{agency="planning",store="offsite"}'] > 0
    assert values['drbackup_store_up{store="offsite"}'] == 1
    assert values['drbackup_replication_lag_seconds{agency="planning",replica="archive"}'] == 0
    assert values['drbackup_replication_last_success_timestamp_seconds{agency="planning",'
                  'replica="archive"}'] > 0
    assert values['drbackup_rto_estimate_seconds{agency="planning"}'] > 0
    assert values['drbackup_verify_runs_total{agency="planning",kind="drill",'
                  'result="success"}'] == 1
    assert values['drbackup_verify_runs_total{agency="planning",kind="structure",'
                  'result="success"}'] == 1
    assert values['drbackup_dump_size_bytes{agency="planning",source="registry"}'] >= 512


def check_restart_keeps_last_success(populated: Workspace) -> None:
    key = ('drbackup_backup_last_success_timestamp_seconds'
           '{agency="planning",source="documents"}')
    seen = []
    for _ in range(2):  # two exporter processes, one after the other, on the same state
        with exporter_process(populated.write(), populated.env(),
                              populated.root / "exporter.log") as (_, url):
            seen.append(parse(scrape(url)))
    assert seen[0][key] > 0
    assert seen[1][key] == seen[0][key]
    state_derived = [k for k in seen[0] if k.startswith("drbackup_backup_")]
    assert {k: seen[1][k] for k in state_derived} == {k: seen[0][k] for k in state_derived}


def check_a_scrape_spawns_no_process(populated: Workspace, restic_binary: str) -> None:
    """100 scrapes of a separate exporter process: a logging `restic` wrapper (first on PATH
    and named in the config) is never invoked and the exporter never has a child process."""
    bin_dir = populated.root / "spy-bin"
    bin_dir.mkdir(exist_ok=True)
    calls = populated.root / "restic-calls.log"
    wrapper = bin_dir / "restic"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\nexec "{restic_binary}" "$@"\n')
    wrapper.chmod(0o755)
    config = json.loads(json.dumps(populated.config))
    config["daemon"]["restic"] = str(wrapper)
    config_path = populated.root / "spy.toml"
    config_path.write_text(tomli_w.dumps(config))
    env = {**populated.env(), "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}
    # The wrapper works: a verb that does run restic is logged.
    subprocess.run([sys.executable, "-m", "drbackup", "--config", str(config_path), "version"],
                   env=env, check=True, capture_output=True, timeout=60)
    before = calls.read_text().splitlines()
    assert len(before) == 1

    with exporter_process(config_path, env, populated.root / "spy-exporter.log") as (proc, url):
        watched = psutil.Process(proc.pid)
        children_seen = 0
        for _ in range(100):
            assert "drbackup_backup_last_success_timestamp_seconds" in scrape(url)
            children_seen += len(watched.children(recursive=True))
    assert calls.read_text().splitlines() == before
    assert children_seen == 0


def test_standalone_exporter_on_real_state(tmp_path: Path, restic_binary: str,
                                           s3_server: MotoServer) -> None:
    """One test over one expensively filled state (so parallel workers never build it twice):
    promtool on a real scrape, restart, and no process per scrape."""
    populated = populate(tmp_path, restic_binary, s3_server)
    check_promtool_on_a_real_scrape(populated)
    check_restart_keeps_last_success(populated)
    check_a_scrape_spawns_no_process(populated, restic_binary)
