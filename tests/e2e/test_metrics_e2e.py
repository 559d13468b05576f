"""Metrics end to end: a state database filled by real backups (a directory and a SQLite dump),
real failed backups, a real structure check and a real file restore drill (the real CLI, real
restic, the real moto S3 server), scraped by drbackup's exporter and by a real Prometheus with
the rule file loaded.

Replication rows are written into state directly while the replication job (offsite branch) is
not on main: the collector reads the same run rows either way. The same flow against the real
daemon (`drbackup run`) is in test_metrics_daemon.py; this file covers the standalone exporter
(`drbackup metrics --serve`) and an in-process endpoint with a stand-in live view.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest
import tomli_w

from drbackup.config import load_config
from drbackup.metrics import serve_metrics
from drbackup.state import StateDB
from tests.support.metrics import RULES, panels_without_data, parse, scrape, wait_for
from tests.support.prometheus import PrometheusServer
from tests.support.servers import MotoServer
from tests.support.workspace import Workspace


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory, restic_binary: str,
              s3_server: MotoServer) -> Workspace:
    """One agency on S3 with a replica: real successful backups (a directory, a SQLite dump),
    two real failed backups (missing source path), a real `repo stats`, a real structure check
    and file drill, plus a synthetic replication row."""
    root = tmp_path_factory.mktemp("metrics-e2e")
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

    state = StateDB(ws.state_dir / "state.db")
    try:
        now = time.time()

        def synthetic(job: str, seconds: float, **kwargs: Any) -> None:
            details = kwargs.pop("details", None)
            counts = kwargs.pop("counts", None)
            run_id = state.start_run(job, "planning", trigger="test", started_at=now - 600,
                                     **kwargs)
            state.finish_run(run_id, "success", details=details, counts=counts,
                             finished_at=now - 600 + seconds)

        synthetic("replicate", 8, store="archive")
    finally:
        state.close()
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


def test_real_scrape_passes_promtool_check_metrics(populated: Workspace) -> None:
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
    assert values['drbackup_rto_estimate_seconds{agency="planning"}'] > 0
    assert values['drbackup_verify_runs_total{agency="planning",kind="drill",'
                  'result="success"}'] == 1
    assert values['drbackup_verify_runs_total{agency="planning",kind="structure",'
                  'result="success"}'] == 1
    assert values['drbackup_dump_size_bytes{agency="planning",source="registry"}'] >= 512


def test_restart_keeps_last_success(populated: Workspace) -> None:
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


def test_a_scrape_spawns_no_process(populated: Workspace, restic_binary: str) -> None:
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


class FakeLive:
    """Stands in for the daemon's live status (fixed, non-zero queue and watcher figures)."""

    def jobs_running(self) -> int:
        return 1

    def jobs_queued(self) -> int:
        return 2

    def pending_changes(self) -> dict[tuple[str, str], int]:
        return {("planning", "documents"): 3}

    def watch_overflows(self) -> dict[tuple[str, str], int]:
        return {("planning", "documents"): 1}

    def next_runs(self) -> dict[tuple[str, str], float]:
        return {("planning", "documents"): time.time() + 600}


def test_prometheus_end_to_end(populated: Workspace, prometheus: PrometheusServer) -> None:
    """Every PromQL expression of every dashboard panel returns data from a real Prometheus
    scraping the exporter, and the RPO alert (rpo = 2s) goes pending or firing."""
    config = load_config(populated.write())
    state = StateDB(populated.state_dir / "state.db")
    server = serve_metrics(config, state, FakeLive())
    try:
        prometheus.start([server.address], [RULES])
        assert wait_for(lambda: prometheus.query('up{job="drbackup"} == 1'))
        # rate()/increase() panels need at least two samples in their window
        assert wait_for(lambda: prometheus.query(
            'count_over_time(drbackup_build_info[1m]) >= 3'))
        assert panels_without_data(prometheus) == []

        def rpo_alert() -> list[dict[str, Any]]:
            alerts = prometheus.api("alerts")["alerts"]
            return [a for a in alerts if a["labels"]["alertname"] == "DrBackupRPOBreached"
                    and a["state"] in ("pending", "firing")]

        alerts = wait_for(rpo_alert)
        assert sorted((a["labels"]["agency"], a["labels"]["source"]) for a in alerts) == [
            ("planning", "documents"), ("planning", "registry")]
        assert alerts[0]["labels"]["severity"] == "critical"
        failing = prometheus.query('drbackup_backup_consecutive_failures{source="broken"} >= 2')
        assert len(failing) == 1
    finally:
        server.stop()
        state.close()
