"""When the daemon publishes its fleet summary: at start, when the schedule says, and after
another job finished (only then asking for a change); never because its own job finished."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from drbackup.config.models import AgencyConfig, Config, DaemonConfig
from drbackup.daemon import fleet
from drbackup.daemon.fleet import FleetPublisher
from drbackup.daemon.queue import Job, JobQueue


def _config(tmp_path: Path, schedule: str | None) -> Config:
    return Config(daemon=DaemonConfig(state_dir=tmp_path, schedule_jitter=0),
                  fleet={"publish_schedule": schedule},
                  agencies=[AgencyConfig(id="planning", password_file=tmp_path / "pw")])


def _drain(queue: JobQueue) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        queue.dispatch()
        if queue.counts() == (0, 0):
            return
        time.sleep(0.01)
    raise AssertionError("queue did not drain")


def test_start_schedule_and_other_jobs_trigger_but_its_own_job_does_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    monkeypatch.setattr(fleet, "publish_fleet",
                        lambda rt, only_if_changed: calls.append(only_if_changed))
    queue = JobQueue(2)
    publisher = FleetPublisher(queue, lambda: None)  # type: ignore[arg-type,return-value]
    config = _config(tmp_path, "every 1h")
    now = time.time()
    publisher.apply(config, now, first=True)
    _drain(queue)
    assert calls == [False]  # at start: always published (only_if_changed=False)
    for _ in range(3):  # its own job's end is no trigger
        publisher.tick(now + 1, config)
        _drain(queue)
    assert calls == [False]

    def backup(job: Job) -> Any:
        return None
    queue.submit(Job("backup", "planning", "local", "docs", backup))
    _drain(queue)
    publisher.tick(now + 2, config)
    _drain(queue)
    assert calls == [False, True]  # after another job: only if a verdict changed
    publisher.tick(now + 3601, config)
    _drain(queue)
    assert calls == [False, True, False]  # scheduled: always published


def test_no_agencies_no_publication(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    monkeypatch.setattr(fleet, "publish_fleet",
                        lambda rt, only_if_changed: calls.append(only_if_changed))
    queue = JobQueue(1)
    publisher = FleetPublisher(queue, lambda: None)  # type: ignore[arg-type,return-value]
    publisher.apply(Config(daemon=DaemonConfig(state_dir=tmp_path)), time.time(), first=True)
    _drain(queue)
    assert calls == []
