"""Store health of local stores, recorded in state; the daemon's job form raises when down."""

from __future__ import annotations

from pathlib import Path

import pytest

from drbackup.config.models import Config
from drbackup.errors import DrBackupError, ExitCode
from drbackup.jobs.runtime import Runtime
from drbackup.jobs.store_health import check_store_health, last_store_health, store_health_job


def runtime(tmp_path: Path, store_path: Path) -> Runtime:
    password = tmp_path / "pw"
    password.write_text("x")
    config = Config.model_validate({
        "daemon": {"state_dir": str(tmp_path / "state"), "cache_dir": str(tmp_path / "cache")},
        "stores": {"disk": {"path": str(store_path)}},
        "agencies": [{"id": "a", "password_file": str(password), "store": "disk"}],
    })
    return Runtime.create(config)


def test_writable_local_store_is_up_and_recorded(tmp_path: Path) -> None:
    rt = runtime(tmp_path, tmp_path / "repos" / "not-yet-created")
    record = check_store_health(rt, "disk")
    assert record.up and record.kind == "local" and record.latency_seconds is not None
    assert last_store_health(rt.state, "disk") == record
    agency = rt.config.agency("a")
    assert store_health_job(rt, agency, "disk", "schedule") == last_store_health(rt.state,
                                                                                  "disk")
    rt.close()


def test_store_under_a_regular_file_is_down_and_the_job_raises(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    rt = runtime(tmp_path, blocker / "repos")
    record = check_store_health(rt, "disk")
    assert not record.up and "not a writable directory" in (record.error or "")
    with pytest.raises(DrBackupError) as down:
        store_health_job(rt, rt.config.agency("a"), "disk", "schedule")
    assert down.value.exit_code == ExitCode.STORE_UNREACHABLE
    assert last_store_health(rt.state, "never-checked") is None
    rt.close()
