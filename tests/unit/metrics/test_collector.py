"""The state-backed collector: values computed from runs in a real (temporary) state database,
folded incrementally, restricted to configured agencies and sources."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from drbackup import __version__
from drbackup.config.models import Config
from drbackup.metrics.collector import StateCollector
from drbackup.metrics.definitions import METRICS
from drbackup.state import RunCounts, StateDB
from drbackup.state.health import record_store_health

NOW = 1_800_000_000.0
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def make_config(tmp_path: Path, **agency: Any) -> Config:
    password = tmp_path / "pw"
    password.write_text("x\n")
    return Config.model_validate({
        "daemon": {"state_dir": str(tmp_path / "state"), "cache_dir": str(tmp_path / "cache")},
        "stores": {"archive": {"path": str(tmp_path / "archive")}},
        "agencies": [{
            "id": "planning", "password_file": str(password), "rpo": "1h", "rto": "2h",
            "verify_max_age": "7d", "replicas": ["archive"],
            "sources": [{"id": "docs", "kind": "directory", "paths": ["/srv/docs"]},
                        {"id": "mail", "kind": "directory", "paths": ["/srv/mail"]}],
            **agency,
        }],
    })


def samples(collector: StateCollector) -> Samples:
    out: Samples = {}
    for family in collector.collect():
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def run(state: StateDB, job: str, result: str, start: float, seconds: float = 10, *,
        source: str | None = "docs", store: str | None = "local",
        counts: RunCounts | None = None, details: dict[str, Any] | None = None,
        agency: str = "planning") -> int:
    run_id = state.start_run(job, agency, source=source, store=store, started_at=start)
    if result != "running":
        state.finish_run(run_id, result, counts=counts, details=details,
                         finished_at=start + seconds)
    return run_id


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateDB]:
    db = StateDB(tmp_path / "state" / "state.db")
    yield db
    db.close()


def test_backup_metrics_come_from_state(tmp_path: Path, state: StateDB) -> None:
    config = make_config(tmp_path)
    run(state, "backup", "success", NOW - 7200, 30, counts=RunCounts(
        snapshot_id="aa", files_new=5, files_changed=1, files_unmodified=10, files_unreadable=0,
        bytes_added=1000, bytes_processed=5000))
    run(state, "backup", "failed", NOW - 3600, 2)
    run(state, "backup", "failed", NOW - 1800, 2)
    run(state, "backup", "success", NOW - 7000, 400, source="mail",
        counts=RunCounts(bytes_added=50, bytes_processed=60, files_new=1),
        details={"dump_bytes": 4096, "dump_seconds": 3.5})
    run(state, "backup", "running", NOW - 10, source="mail")
    found = samples(StateCollector(config, state, clock=lambda: NOW))

    assert value(found, "drbackup_backup_last_success_timestamp_seconds",
                 agency="planning", source="docs") == NOW - 7200 + 30
    assert value(found, "drbackup_backup_last_attempt_timestamp_seconds",
                 agency="planning", source="docs") == NOW - 1800
    assert value(found, "drbackup_backup_last_attempt_timestamp_seconds",
                 agency="planning", source="mail") == NOW - 10  # the running one
    assert value(found, "drbackup_backup_consecutive_failures",
                 agency="planning", source="docs") == 2
    assert value(found, "drbackup_backup_runs_total",
                 agency="planning", source="docs", result="failed") == 2
    assert value(found, "drbackup_backup_runs_total",
                 agency="planning", source="docs", result="interrupted") == 0
    assert value(found, "drbackup_backup_added_bytes_total",
                 agency="planning", source="docs") == 1000
    assert value(found, "drbackup_backup_processed_bytes", agency="planning", source="docs") == 5000
    assert value(found, "drbackup_backup_files",
                 agency="planning", source="docs", state="unmodified") == 10
    assert value(found, "drbackup_backup_duration_seconds_bucket",
                 agency="planning", source="docs", le="10.0") == 0
    assert value(found, "drbackup_backup_duration_seconds_bucket",
                 agency="planning", source="docs", le="60.0") == 1
    assert value(found, "drbackup_backup_duration_seconds_bucket",
                 agency="planning", source="docs", le="+Inf") == 1
    assert value(found, "drbackup_backup_duration_seconds_count",
                 agency="planning", source="docs") == 1
    assert value(found, "drbackup_backup_duration_seconds_sum",
                 agency="planning", source="mail") == 400
    assert value(found, "drbackup_dump_size_bytes", agency="planning", source="mail") == 4096
    assert value(found, "drbackup_dump_duration_seconds", agency="planning", source="mail") == 3.5
    assert value(found, "drbackup_last_run_result",
                 agency="planning", source="docs", kind="backup", result="failed") == 1
    assert ("drbackup_last_run_result", (("agency", "planning"), ("kind", "backup"),
            ("result", "success"), ("source", "docs"))) not in found
    assert value(found, "drbackup_rpo_target_seconds", agency="planning") == 3600
    assert value(found, "drbackup_rto_target_seconds", agency="planning") == 7200
    assert value(found, "drbackup_verify_max_age_seconds", agency="planning") == 7 * 86400
    assert value(found, "drbackup_jobs_running") == 1
    assert value(found, "drbackup_state_up") == 1
    assert value(found, "drbackup_state_db_size_bytes") > 0
    assert value(found, "drbackup_filesystem_avail_bytes", kind="state") > 0


def test_runs_are_folded_incrementally_and_once(tmp_path: Path, state: StateDB) -> None:
    config = make_config(tmp_path)
    collector = StateCollector(config, state, clock=lambda: NOW)
    first = run(state, "backup", "success", NOW - 500, 10, counts=RunCounts(bytes_added=7))
    slow = run(state, "backup", "running", NOW - 400)
    found = samples(collector)
    assert value(found, "drbackup_backup_added_bytes_total", agency="planning", source="docs") == 7
    run(state, "backup", "failed", NOW - 300, 5)
    state.finish_run(slow, "success", counts=RunCounts(bytes_added=3), finished_at=NOW - 100)
    for _ in range(3):  # repeated scrapes never count a run twice
        found = samples(collector)
    assert value(found, "drbackup_backup_added_bytes_total", agency="planning", source="docs") == 10
    assert value(found, "drbackup_backup_runs_total",
                 agency="planning", source="docs", result="success") == 2
    # the failure started after the slow success began: one failure since the newest success
    assert value(found, "drbackup_backup_consecutive_failures",
                 agency="planning", source="docs") == 1
    assert value(found, "drbackup_backup_last_success_timestamp_seconds",
                 agency="planning", source="docs") == NOW - 100
    # a fresh collector (a restarted daemon) folds the same history to the same values
    host = ("drbackup_filesystem_", "drbackup_state_db_size_bytes")
    fresh = samples(StateCollector(config, state, clock=lambda: NOW))
    assert ({k: v for k, v in fresh.items() if not k[0].startswith(host)}
            == {k: v for k, v in found.items() if not k[0].startswith(host)})
    assert first < slow


def test_success_resets_consecutive_failures(tmp_path: Path, state: StateDB) -> None:
    config = make_config(tmp_path)
    for offset in (900, 800, 700):
        run(state, "backup", "failed", NOW - offset, 1)
    run(state, "backup", "warning", NOW - 600, 1)
    found = samples(StateCollector(config, state, clock=lambda: NOW))
    assert value(found, "drbackup_backup_consecutive_failures",
                 agency="planning", source="docs") == 0


def test_verification_replication_and_repository_figures(tmp_path: Path,
                                                         state: StateDB) -> None:
    config = make_config(tmp_path)
    run(state, "backup", "success", NOW - 5000, 10)
    run(state, "backup", "success", NOW - 1000, 10)
    run(state, "check", "success", NOW - 4000, 60, source=None, details={"kind": "structure"})
    run(state, "check", "failed", NOW - 3000, 60, source=None, details={"kind": "structure"})
    run(state, "drill", "success", NOW - 2000, 300, source=None,
        details={"rto_estimate_seconds": 9000})
    run(state, "replicate", "success", NOW - 3000, 20, source=None, store="archive")
    run(state, "stats", "success", NOW - 900, 5, source=None,
        details={"snapshots": 12, "repository_size_bytes": 123456})
    record_store_health(state, "archive", up=False, error="unreachable", checked_at=NOW - 5)
    record_store_health(state, "local", up=True, latency_seconds=0.25, checked_at=NOW - 6)
    found = samples(StateCollector(config, state, clock=lambda: NOW))

    assert value(found, "drbackup_verify_last_success_timestamp_seconds",
                 agency="planning", kind="structure") == NOW - 4000 + 60
    assert value(found, "drbackup_verify_last_failure_timestamp_seconds",
                 agency="planning", kind="structure") == NOW - 3000 + 60
    assert value(found, "drbackup_verify_runs_total",
                 agency="planning", kind="drill", result="success") == 1
    assert value(found, "drbackup_restore_drill_duration_seconds", agency="planning") == 300
    assert value(found, "drbackup_rto_estimate_seconds", agency="planning") == 9000
    # the last copy started at NOW-3000; the backup started at NOW-1000 is not on the replica
    assert value(found, "drbackup_replication_lag_seconds",
                 agency="planning", replica="archive") == pytest.approx(1000)
    assert value(found, "drbackup_replication_last_success_timestamp_seconds",
                 agency="planning", replica="archive") == NOW - 2980
    assert value(found, "drbackup_snapshots", agency="planning", store="local") == 12
    assert value(found, "drbackup_repository_size_bytes",
                 agency="planning", store="local") == 123456
    assert value(found, "drbackup_store_up", store="archive") == 0
    assert value(found, "drbackup_store_up", store="local") == 1
    assert value(found, "drbackup_store_latency_seconds", store="local") == 0.25
    assert ("drbackup_store_latency_seconds", (("store", "archive"),)) not in found


def test_never_replicated_lag_grows_from_the_first_backup(tmp_path: Path,
                                                          state: StateDB) -> None:
    config = make_config(tmp_path)
    run(state, "backup", "success", NOW - 5000, 10)
    run(state, "backup", "success", NOW - 100, 10)
    found = samples(StateCollector(config, state, clock=lambda: NOW))
    assert value(found, "drbackup_replication_lag_seconds",
                 agency="planning", replica="archive") == pytest.approx(5000)


def test_replication_measurement_and_later_backups_set_the_lag(tmp_path: Path,
                                                               state: StateDB) -> None:
    config = make_config(tmp_path)
    run(state, "backup", "success", NOW - 5000, 10)
    run(state, "replicate", "failed", NOW - 4000, 10, source=None, store="archive")
    # the replication job measured at NOW-3000: the snapshot of NOW-5000 is still missing
    state.set_value("replication:planning:archive", json.dumps(
        {"measured_at": NOW - 3000, "oldest_uncopied_time": NOW - 5000}))
    found = samples(StateCollector(config, state, clock=lambda: NOW))
    assert value(found, "drbackup_replication_lag_seconds",
                 agency="planning", replica="archive") == pytest.approx(5000)
    # a complete copy measured at NOW-2000; a backup made after it is the oldest missing one
    run(state, "replicate", "success", NOW - 2100, 90, source=None, store="archive")
    state.set_value("replication:planning:archive", json.dumps(
        {"measured_at": NOW - 2000, "oldest_uncopied_time": None}))
    run(state, "backup", "success", NOW - 600, 10)
    found = samples(StateCollector(config, state, clock=lambda: NOW))
    assert value(found, "drbackup_replication_lag_seconds",
                 agency="planning", replica="archive") == pytest.approx(600)


def test_agency_rto_estimate_adds_up_the_newest_drill_of_each_source(tmp_path: Path,
                                                                     state: StateDB) -> None:
    config = make_config(tmp_path)
    run(state, "drill", "success", NOW - 900, 30, source="docs",
        details={"kind": "files", "rto_estimate_seconds": 500})
    run(state, "drill", "success", NOW - 800, 40, source="docs",
        details={"kind": "files", "rto_estimate_seconds": 100})
    run(state, "drill", "warning", NOW - 700, 50, source="mail",
        details={"kind": "files", "rto_estimate_seconds": 200})
    run(state, "drill", "failed", NOW - 600, 5, source="mail", details={"kind": "files"})
    found = samples(StateCollector(config, state, clock=lambda: NOW))
    assert value(found, "drbackup_rto_estimate_seconds", agency="planning") == 300
    assert value(found, "drbackup_restore_drill_duration_seconds", agency="planning") == 50
    assert value(found, "drbackup_verify_runs_total",
                 agency="planning", kind="drill", result="failed") == 1
    assert value(found, "drbackup_verify_last_failure_timestamp_seconds",
                 agency="planning", kind="drill") == NOW - 595


def test_only_configured_agencies_and_sources_are_exported(tmp_path: Path,
                                                          state: StateDB) -> None:
    config = make_config(tmp_path)
    run(state, "backup", "success", NOW - 100, agency="retired")
    run(state, "backup", "success", NOW - 100, source="removed")
    found = samples(StateCollector(config, state, clock=lambda: NOW))
    labels = {dict(key[1]).get("agency") for key in found} | {
        dict(key[1]).get("source") for key in found}
    assert "retired" not in labels
    assert "removed" not in labels


class FakeLive:
    def jobs_running(self) -> int:
        return 2

    def jobs_queued(self) -> int:
        return 5

    def pending_changes(self) -> dict[tuple[str, str], int]:
        return {("planning", "docs"): 17, ("ghost", "x"): 1}

    def watch_overflows(self) -> dict[tuple[str, str], int]:
        return {("planning", "mail"): 3}

    def next_runs(self) -> dict[tuple[str, str], float]:
        return {("planning", "docs"): NOW + 60}


class BrokenLive(FakeLive):
    def jobs_queued(self) -> int:
        raise RuntimeError("daemon bug")


def test_live_values_from_the_daemon(tmp_path: Path, state: StateDB) -> None:
    config = make_config(tmp_path)
    found = samples(StateCollector(config, state, FakeLive(), clock=lambda: NOW))
    assert value(found, "drbackup_jobs_running") == 2
    assert value(found, "drbackup_jobs_queued") == 5
    assert value(found, "drbackup_pending_changes", agency="planning", source="docs") == 17
    assert value(found, "drbackup_pending_changes", agency="planning", source="mail") == 0
    assert value(found, "drbackup_watch_overflows_total", agency="planning", source="mail") == 3
    assert value(found, "drbackup_next_run_timestamp_seconds",
                 agency="planning", source="docs") == NOW + 60
    assert not any(dict(key[1]).get("agency") == "ghost" for key in found)
    broken = samples(StateCollector(config, state, BrokenLive(), clock=lambda: NOW))
    assert value(broken, "drbackup_state_up") == 1  # the scrape survives a live-view bug
    assert ("drbackup_jobs_queued", ()) not in broken


def test_unreadable_state_reports_state_down(tmp_path: Path, state: StateDB) -> None:
    config = make_config(tmp_path)
    collector = StateCollector(config, state, clock=lambda: NOW)
    state.close()
    found = samples(collector)
    assert value(found, "drbackup_state_up") == 0
    assert value(found, "drbackup_build_info", version=__version__) == 1
    assert value(found, "drbackup_rpo_target_seconds", agency="planning") == 3600


def test_every_exported_family_is_defined(tmp_path: Path, state: StateDB) -> None:
    config = make_config(tmp_path)
    run(state, "backup", "success", NOW - 100)
    names = {family.name for family in StateCollector(config, state, FakeLive()).collect()}
    defined = {name.removesuffix("_total") for name in METRICS}
    assert names <= defined


def test_fast_text_rendering_matches_prometheus_client(tmp_path: Path, state: StateDB) -> None:
    config = make_config(tmp_path)
    run(state, "backup", "success", NOW - 100, counts=RunCounts(bytes_added=5))
    run(state, "drill", "success", NOW - 50, source=None)
    collector = StateCollector(config, state, FakeLive(), clock=lambda: NOW)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)

    def parsed(text: str) -> list[tuple[str, str, str, list[tuple[str, dict[str, str], float]]]]:
        return [(f.name, f.type, f.documentation,
                 [(s.name, s.labels, s.value) for s in f.samples])
                for f in text_string_to_metric_families(text)
                if not f.name.startswith(("drbackup_filesystem_", "drbackup_state_db_size"))]

    ours = collector.render()
    assert parsed(ours) == parsed(generate_latest(registry).decode())
    assert "drbackup_backup_duration_seconds_bucket" in ours


def test_cached_rendering_follows_every_state_change(tmp_path: Path, state: StateDB) -> None:
    config = make_config(tmp_path)
    clock = [NOW]
    collector = StateCollector(config, state, clock=lambda: clock[0])

    def rendered() -> Samples:
        out: Samples = {}
        for family in text_string_to_metric_families(collector.render()):
            if family.name.startswith("drbackup_filesystem_"):
                continue  # free space moves on its own
            for sample in family.samples:
                out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return out

    run(state, "backup", "success", NOW - 100, counts=RunCounts(bytes_added=5))
    first = rendered()
    assert rendered() == first  # unchanged state: served from the cache, same values
    run(state, "backup", "success", NOW - 50, counts=RunCounts(bytes_added=5))
    assert value(rendered(), "drbackup_backup_added_bytes_total",
                 agency="planning", source="docs") == 10
    running = run(state, "backup", "running", NOW - 10)
    assert value(rendered(), "drbackup_backup_last_attempt_timestamp_seconds",
                 agency="planning", source="docs") == NOW - 10
    state.finish_run(running, "failed", finished_at=NOW - 5)
    assert value(rendered(), "drbackup_backup_consecutive_failures",
                 agency="planning", source="docs") == 1
    record_store_health(state, "local", up=False, checked_at=NOW)
    assert value(rendered(), "drbackup_store_up", store="local") == 0
    lag = value(rendered(), "drbackup_replication_lag_seconds", agency="planning",
                replica="archive")
    clock[0] += 100  # never replicated: the lag grows with the clock, cache or not
    assert value(rendered(), "drbackup_replication_lag_seconds", agency="planning",
                 replica="archive") == lag + 100
