"""The watchdog ping is sent only while the loop and the workers make progress."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from drbackup.config.models import Config, DaemonConfig
from drbackup.daemon.notify import Notifier
from drbackup.daemon.queue import STUCK_GRACE_SECONDS, Job
from drbackup.daemon.supervisor import Daemon
from drbackup.daemon.watcher import WatchFaults


def test_no_watchdog_ping_while_a_job_is_stuck(tmp_path: Path) -> None:
    address = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(address))
        sock.settimeout(0.5)
        notifier = Notifier({"NOTIFY_SOCKET": str(address), "WATCHDOG_USEC": "2"})
        config = Config(daemon=DaemonConfig(state_dir=tmp_path / "state"))
        daemon = Daemon(tmp_path / "c.toml", config, notifier=notifier, faults=WatchFaults())
        daemon.status.loop_beat = time.monotonic()
        assert daemon.progress_ok()
        assert notifier.watchdog_due()
        notifier.watchdog()
        assert sock.recv(100) == b"WATCHDOG=1"

        gate = threading.Event()

        def hang(job: Job) -> None:
            gate.wait(10)

        job = Job("backup", "a", "local", "x", hang, timeout=1.0)
        daemon.queue.submit(job)
        daemon.queue.dispatch()
        job.started_at = time.time() - 1.0 - STUCK_GRACE_SECONDS - 1
        assert not daemon.progress_ok()
        gate.set()
        assert daemon.queue.wait_idle(5)
        assert daemon.progress_ok()
        daemon.status.loop_beat = time.monotonic() - 60  # the main loop hangs
        assert not daemon.progress_ok()


def test_a_registered_periodic_task_runs_through_the_queue(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from drbackup.config.models import AgencyConfig
    from drbackup.daemon import supervisor, tasks
    from drbackup.jobs.runtime import Runtime

    calls: list[tuple[str, str, str]] = []

    def forget(rt: Runtime, agency: AgencyConfig, store: str, trigger: str) -> None:
        calls.append((agency.id, store, trigger))

    task = tasks.PeriodicTask("forget", run=forget, schedule=lambda config, agency: "every 1s")
    monkeypatch.setattr(supervisor, "PERIODIC_TASKS", [task])
    config = Config(daemon=DaemonConfig(state_dir=tmp_path / "state", schedule_jitter="0s"),
                    agencies=[AgencyConfig(id="planning", password_file=tmp_path / "pw")])
    daemon = Daemon(tmp_path / "c.toml", config, notifier=Notifier({}), faults=WatchFaults())
    daemon._start()
    try:
        now = time.time()
        daemon._tick(now + 2)
        daemon.queue.dispatch()
        assert daemon.queue.wait_idle(5)
        assert calls == [("planning", "local", "schedule")]
    finally:
        assert daemon.watcher is not None
        daemon.watcher.stop()
        daemon._runtime().close()


def test_verification_check_and_drill_are_registered_with_their_schedules(
        tmp_path: Path) -> None:
    from drbackup.config.models import AgencyConfig
    from drbackup.daemon.tasks import PERIODIC_TASKS

    agency = AgencyConfig.model_validate({
        "id": "planning", "password_file": str(tmp_path / "pw"),
        "verify": {"check_schedule": "every 2h", "drill_schedule": None}})
    config = Config(agencies=[agency])
    by_kind = {task.kind: task for task in PERIODIC_TASKS}
    assert by_kind["check"].schedule(config, agency) == "every 2h"
    assert by_kind["drill"].schedule(config, agency) is None
    assert by_kind["check"].stores(agency) == ["local"]


def test_config_check_rejects_a_bad_check_schedule(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from drbackup.config.models import AgencyConfig

    with pytest.raises(ValidationError, match="not understood"):
        AgencyConfig.model_validate({"id": "planning", "password_file": str(tmp_path / "pw"),
                                     "verify": {"check_schedule": "now and then"}})
