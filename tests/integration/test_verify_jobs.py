"""The daemon's entry points, in process with real restic on a local store: check_job rotates
data subsets with structure checks in between; drill_job drills every source and raises
VerifyFailedError after recording a failed drill; runs carry the details metrics read."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from drbackup.config import load_config
from drbackup.config.models import DirectorySource
from drbackup.errors import VerifyFailedError
from drbackup.jobs.backup import run_backup
from drbackup.jobs.check import check_job
from drbackup.jobs.drills import drill_job
from drbackup.jobs.repository import init_repository
from drbackup.jobs.runtime import Runtime
from tests.support.workspace import Workspace


@pytest.fixture
def runtime(workspace: Workspace, tmp_path: Path) -> Iterator[Runtime]:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_bytes(os.urandom(5000))
    workspace.add_agency("planning", verify={"data_check_interval": "1h"})
    workspace.add_directory_source("planning", "documents", [data])
    rt = Runtime.create(load_config(workspace.write()))
    try:
        yield rt
    finally:
        rt.close()


def test_daemon_jobs_record_runs_for_metrics(runtime: Runtime) -> None:
    agency = runtime.config.agency("planning")
    init_repository(runtime, agency)
    run_backup(runtime, agency, agency.sources[0])

    first = check_job(runtime, agency, "local", "schedule")
    second = check_job(runtime, agency, "local", "schedule")
    assert (first.kind, first.subset) == ("read-data-subset", "1/30")
    assert (second.kind, second.subset) == ("structure", None)

    [drill] = drill_job(runtime, agency, "local", "schedule")
    assert drill.verdict == "pass"
    run = runtime.state.run(drill.run_id)
    assert run is not None and run.job == "drill" and run.result == "success"
    assert run.details["kind"] == "files" and run.details["verdict"] == "pass"
    assert run.details["bytes"] == 5000
    for key in ("seconds", "throughput", "rto_estimate_seconds"):
        assert run.details[key] > 0
    checks = runtime.state.runs(agency="planning", job="check")
    assert [c.details["kind"] for c in checks] == ["structure", "read-data-subset"]

    # Same size and mtime, other content: the drill fails, and the job says so.
    source = agency.sources[0]
    assert isinstance(source, DirectorySource)
    path = source.paths[0] / "a.txt"
    info = path.stat()
    path.write_bytes(os.urandom(5000))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    with pytest.raises(VerifyFailedError, match="mismatch"):
        drill_job(runtime, agency, "local", "schedule")
    failed = runtime.state.last_run(agency="planning", job="drill")
    assert failed is not None and failed.result == "failed"
    assert failed.details["verdict"] == "fail" and failed.details["mismatched"] == 1
