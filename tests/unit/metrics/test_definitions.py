"""The metric table is the single source: names follow Prometheus conventions, docs/metrics.md
documents each one, and the rules and dashboard use only defined names."""

from __future__ import annotations

import json
import re
from pathlib import Path

from drbackup.metrics.definitions import METRICS, check_definitions

ROOT = Path(__file__).resolve().parents[3]
NAME = re.compile(r"\bdrbackup_[a-z0-9_]*[a-z0-9]\b(?!\*)")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def _known(name: str) -> bool:
    if name in METRICS:
        return True
    return any(name.endswith(suffix) and METRICS.get(name.removesuffix(suffix)) is not None
               and METRICS[name.removesuffix(suffix)].type == "histogram"
               for suffix in HISTOGRAM_SUFFIXES)


def test_definitions_follow_the_naming_rules() -> None:
    assert check_definitions() == []


def test_issue_metric_set_is_present() -> None:
    required = [
        "drbackup_build_info",
        "drbackup_backup_last_success_timestamp_seconds",
        "drbackup_backup_last_attempt_timestamp_seconds",
        "drbackup_backup_runs_total",
        "drbackup_backup_duration_seconds",
        "drbackup_backup_added_bytes_total",
        "drbackup_backup_processed_bytes",
        "drbackup_backup_files",
        "drbackup_snapshots",
        "drbackup_repository_size_bytes",
        "drbackup_store_up",
        "drbackup_store_latency_seconds",
        "drbackup_replication_lag_seconds",
        "drbackup_verify_last_success_timestamp_seconds",
        "drbackup_verify_runs_total",
        "drbackup_restore_drill_duration_seconds",
        "drbackup_rto_estimate_seconds",
        "drbackup_rpo_target_seconds",
        "drbackup_rto_target_seconds",
        "drbackup_watch_overflows_total",
        "drbackup_pending_changes",
        "drbackup_jobs_running",
        "drbackup_jobs_queued",
        "drbackup_dump_size_bytes",
    ]
    assert [name for name in required if name not in METRICS] == []
    assert METRICS["drbackup_backup_duration_seconds"].type == "histogram"
    assert METRICS["drbackup_backup_files"].labels == ("agency", "source", "state")
    assert METRICS["drbackup_verify_runs_total"].labels == ("agency", "kind", "result")


def test_docs_document_every_metric_and_nothing_else() -> None:
    text = (ROOT / "docs" / "metrics.md").read_text()
    assert [name for name in METRICS if f"`{name}`" not in text] == []
    assert sorted({n for n in NAME.findall(text) if not _known(n)}) == []


def test_rules_and_dashboard_use_only_defined_metrics() -> None:
    rules = (ROOT / "config" / "prometheus" / "drbackup-rules.yml").read_text()
    dashboard = json.loads((ROOT / "config" / "grafana" / "drbackup-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = set(NAME.findall(rules)) | {n for e in exprs for n in NAME.findall(e)}
    assert sorted(n for n in used if not _known(n)) == []
