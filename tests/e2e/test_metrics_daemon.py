"""Metrics of the real daemon end to end: `drbackup run` (real restic, the real moto S3 server)
serves /metrics; a real Prometheus scrapes it with the rule file loaded. After the daemon made
backups (a directory and a SQLite dump), failed backups (a missing path) and replications, and a
real check and file restore drill ran beside it, every PromQL expression of every dashboard
panel returns data, the scrape passes `promtool check metrics`, the RPO alert goes
pending/firing once backups stop, and a restarted daemon reports the same last success.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from tests.support.daemon import DaemonProcess, children
from tests.support.metrics import RULES, panels_without_data, parse, scrape, wait_for
from tests.support.prometheus import PrometheusServer
from tests.support.servers import MotoServer
from tests.support.workspace import Workspace

DOCS = '{agency="planning",source="documents"}'
BROKEN = '{agency="planning",source="broken"}'
LAST_SUCCESS = f"drbackup_backup_last_success_timestamp_seconds{DOCS}"
REPLICATED = ('drbackup_replication_last_success_timestamp_seconds'
              '{agency="planning",replica="archive"}')
def test_daemon_metrics_end_to_end(workspace: Workspace, s3_server: MotoServer, bucket: str,
                                   prometheus: PrometheusServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for index in range(10):
        (data / f"file-{index}.txt").write_text(f"record {index}\n" * 100)
    workspace.add_s3_store("offsite", s3_server, bucket)
    workspace.add_s3_store("archive", s3_server, f"{bucket}-archive")
    # The one-shot verify below runs beside the daemon's jobs: wait for their locks.
    workspace.config["daemon"]["lock_wait"] = "2m"
    workspace.add_agency("planning", store="offsite", replicas=["archive"], rpo="6s", rto="1h")
    workspace.add_directory_source("planning", "documents", [data], debounce="1s")
    workspace.add_directory_source("planning", "broken", [tmp_path / "missing"],
                                   debounce="1s")
    registry = tmp_path / "registry.sqlite"
    with sqlite3.connect(registry) as db:
        db.execute("CREATE TABLE permits (id INTEGER PRIMARY KEY, holder TEXT)")
        db.executemany("INSERT INTO permits (holder) VALUES (?)",
                       [(f"holder {i}",) for i in range(500)])
    workspace.agency("planning")["sources"].append(
        {"id": "registry", "kind": "sqlite", "path": str(registry)})
    daemon = DaemonProcess(workspace)
    restarted: DaemonProcess | None = None
    try:
        daemon.wait_ready()
        url = daemon.metrics_url()

        def backed_up_failed_and_replicated() -> dict[str, float] | None:
            values = parse(scrape(url))
            ok = (values.get(LAST_SUCCESS)
                  and values.get(f"drbackup_backup_consecutive_failures{BROKEN}", 0) >= 1
                  and values.get('drbackup_dump_size_bytes{agency="planning",'
                                 'source="registry"}')
                  and values.get(REPLICATED))
            return values if ok else None

        assert wait_for(backed_up_failed_and_replicated, timeout=120), daemon.log_text()
        workspace.cli("repo", "stats", "--agency", "planning", "--store", "offsite", check=True)
        # a real structure check and a real file restore drill, next to the running daemon
        workspace.cli("verify", "--agency", "planning", "--kind", "check", "--structure-only",
                      check=True)
        workspace.cli("verify", "--agency", "planning", "--source", "documents", "--kind",
                      "files", check=True)

        body = scrape(url)
        lint = subprocess.run(["promtool", "check", "metrics"], input=body,
                              capture_output=True, text=True, timeout=60)
        assert (lint.returncode, lint.stdout + lint.stderr) == (0, "")

        prometheus.start([url.split("//", 1)[1].split("/", 1)[0]], [RULES])
        assert wait_for(lambda: prometheus.query('up{job="drbackup"} == 1'))
        assert wait_for(lambda: prometheus.query(
            'count_over_time(drbackup_build_info[1m]) >= 3'))
        assert panels_without_data(prometheus) == []

        # Backups stop (the source disappears): with rpo = 6s the RPO alert goes pending.
        shutil.rmtree(data)

        def rpo_alert() -> list[dict[str, Any]]:
            alerts = prometheus.api("alerts")["alerts"]
            return [a for a in alerts if a["labels"]["alertname"] == "DrBackupRPOBreached"
                    and a["labels"].get("source") == "documents"
                    and a["state"] in ("pending", "firing")]

        assert wait_for(rpo_alert, timeout=90)

        before = parse(scrape(url))[LAST_SUCCESS]
        assert daemon.stop() == 0
        restarted = DaemonProcess(workspace)
        restarted.wait_ready()
        after = parse(scrape(restarted.metrics_url()))
        assert after[LAST_SUCCESS] == before
    finally:
        daemon.stop()
        if restarted is not None:
            restarted.stop()


def test_daemon_scrapes_spawn_no_process(workspace: Workspace, s3_server: MotoServer,
                                         bucket: str, restic_binary: str,
                                         tmp_path: Path) -> None:
    """Once the daemon is idle, 100 scrapes start no restic (a logging wrapper named in the
    config counts invocations) and the daemon has no child process at any scrape."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("a\n" * 100)
    calls = tmp_path / "restic-calls.log"
    wrapper = tmp_path / "restic"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\nexec "{restic_binary}" "$@"\n')
    wrapper.chmod(0o755)
    workspace.config["daemon"]["restic"] = str(wrapper)
    workspace.add_s3_store("offsite", s3_server, bucket)
    workspace.add_agency("planning", store="offsite", rpo="24h")
    workspace.add_directory_source("planning", "documents", [data], watch=False)
    daemon = DaemonProcess(workspace)
    try:
        daemon.wait_ready()
        url = daemon.metrics_url()

        def idle() -> bool:
            values = parse(scrape(url))
            return bool(values.get(LAST_SUCCESS)) and values.get("drbackup_jobs_running") == 0 \
                and values.get("drbackup_jobs_queued") == 0 and not children(daemon.pid)

        assert wait_for(idle, timeout=90), daemon.log_text()
        before = calls.read_text().splitlines()
        assert before  # the wrapper is the restic the daemon uses
        children_seen = 0
        for _ in range(100):
            assert LAST_SUCCESS in parse(scrape(url))
            children_seen += len(children(daemon.pid))
        assert calls.read_text().splitlines() == before
        assert children_seen == 0
    finally:
        daemon.stop()
