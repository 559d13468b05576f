"""The per-source scheduler at city scale: a tick finds each slot's agency by id (it runs 4
times a second over every source; scanning the config for each made it quadratic: ~20 ms per
tick at 500 agencies x 3 sources, found by bench/fleet_scale.py), and a reload refreshes that
index, so a backup goes to the store the new config names."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from drbackup.config.models import AgencyConfig, Config
from drbackup.daemon.notify import Notifier
from drbackup.daemon.supervisor import Daemon
from drbackup.daemon.watcher import WatchFaults

AGENCIES = 500


def _config(tmp_path: Path, *, store_of_first: str = "local") -> Config:
    return Config.model_validate({
        "daemon": {"state_dir": str(tmp_path / "state"), "cache_dir": str(tmp_path / "cache"),
                   "metrics_listen": "127.0.0.1:0"},
        "stores": {"archive": {"path": str(tmp_path / "archive")}},
        "agencies": [{
            "id": f"agency-{a:03d}", "password_file": str(tmp_path / "pw"), "rpo": "1h",
            "store": store_of_first if a == 0 else "local",
            "sources": [{"id": f"source-{s}", "kind": "directory", "paths": [str(tmp_path)],
                         "watch": False} for s in range(3)],
        } for a in range(AGENCIES)],
    })


def test_tick_and_reload_find_agencies_by_id(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pw").write_text("x\n")
    config = _config(tmp_path)
    daemon = Daemon(tmp_path / "c.toml", config, notifier=Notifier({}), faults=WatchFaults())
    daemon._start()
    try:
        scans: list[str] = []
        original = Config.agency

        def counting(self: Config, agency_id: str) -> AgencyConfig:
            scans.append(agency_id)
            return original(self, agency_id)
        monkeypatch.setattr(Config, "agency", counting)
        # Past every slot's reconciliation time: the tick submits a backup of every source.
        daemon.sources.tick(time.time() + 3600)
        assert scans == []
        running, queued = daemon.queue.counts()
        assert running + queued == AGENCIES * 3  # the start-up backups, coalesced into

        moved = _config(tmp_path, store_of_first="archive")
        daemon.sources.apply(moved, config, first=False, now=time.time())
        daemon.sources.tick(time.time() + 7200)  # reconciliation again, on the new config
        assert scans == []
        assert {j.store for j in daemon.queue.queued() if j.agency == "agency-000"} == {
            "local", "archive"}  # the start-up backups queued before, then the moved ones
    finally:
        daemon.queue.stop_accepting()
        assert daemon.watcher is not None
        daemon.watcher.stop()
        if daemon.metrics is not None:
            daemon.metrics.stop()
        daemon._runtime().close()
