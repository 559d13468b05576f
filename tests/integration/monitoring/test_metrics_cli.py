"""`drbackup metrics` without a daemon: prints the exposition from state, writes it atomically
for node-exporter's textfile collector, and a store check records the store's health."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from drbackup.config.models import Config
from drbackup.jobs.runtime import Runtime
from drbackup.state.health import store_health
from drbackup.store.errors import StoreError
from tests.support.servers import free_port
from tests.support.workspace import Workspace


def test_metrics_verb_prints_and_writes_a_textfile(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    ws.add_agency("planning", rpo="6h")
    ws.add_directory_source("planning", "documents", [tmp_path])
    printed = ws.cli("metrics", check=True)
    families = {f.name: f for f in text_string_to_metric_families(printed.stdout)}
    assert families["drbackup_rpo_target_seconds"].samples[0].value == 6 * 3600
    assert "drbackup_backup_runs" in families  # counters are parsed without _total
    assert not any(name.startswith("process_") for name in families)
    lint = subprocess.run(["promtool", "check", "metrics"], input=printed.stdout,
                          capture_output=True, text=True, timeout=60)
    assert (lint.returncode, lint.stdout + lint.stderr) == (0, "")

    target = tmp_path / "textfile" / "drbackup.prom"
    target.parent.mkdir()
    ws.cli("metrics", "--output", str(target), check=True)
    assert target.read_text().startswith("# HELP drbackup_build_info")
    assert [p.name for p in target.parent.iterdir()] == ["drbackup.prom"]  # no temp left
    missing = ws.cli("metrics", "--output", str(tmp_path / "nowhere" / "x.prom"))
    assert missing.returncode == 2
    assert missing.stderr.startswith("drbackup: error: cannot write metrics")
    assert "Traceback" not in missing.stderr


def test_a_failed_store_check_is_recorded_as_down(tmp_path: Path) -> None:
    credentials = tmp_path / "store.credentials"
    credentials.write_text("[default]\naws_access_key_id = k\naws_secret_access_key = s\n")
    credentials.chmod(0o600)
    password = tmp_path / "pw"
    password.write_text("x\n")
    config = Config.model_validate({
        "daemon": {"state_dir": str(tmp_path / "state"), "cache_dir": str(tmp_path / "cache")},
        "stores": {"offsite": {"url": f"s3:http://127.0.0.1:{free_port()}/bucket",
                               "credentials_file": str(credentials)}},
        "agencies": [{"id": "planning", "password_file": str(password), "store": "offsite"}],
    })
    runtime = Runtime.create(config)
    try:
        try:
            runtime.check_store("offsite")
        except StoreError:
            pass
        else:
            raise AssertionError("nothing listens there: the check must fail")
        record = store_health(runtime.state)["offsite"]
        assert record.up is False
        assert record.error and "k" not in record.error.split()  # no key material
        assert runtime.check_store("local") is None  # local stores have no S3 check
    finally:
        runtime.close()


def test_metrics_verb_without_config_is_a_one_line_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "drbackup", "--config", str(tmp_path / "none.toml"), "metrics"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 4
    assert result.stderr.count("\n") == 1
