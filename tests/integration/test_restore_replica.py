"""The primary store's server is stopped: `restore --from-replica` still restores, byte for byte,
and never needs the primary; a plain restore fails with a clear 'unreachable' error."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from drbackup.cli.main import main
from drbackup.config import load_config
from drbackup.errors import ExitCode
from drbackup.jobs.runtime import Runtime
from tests.support.servers import MotoServer
from tests.support.trees import make_mixed_tree, manifest
from tests.support.workspace import Workspace


def _replicate(ws: Workspace) -> None:
    """Populate the replica the way replication does: same chunker parameters, restic copy."""
    rt = Runtime.create(load_config(ws.write()))
    try:
        agency = rt.config.agency("planning")
        replica_store = rt.s3_store("offsite")
        assert replica_store is not None
        replica_store.ensure_bucket(create=True)
        primary, replica = rt.target(agency, "primary"), rt.target(agency, "offsite")
        rt.restic.init(replica, copy_chunker_params_from=primary)
        rt.restic.copy(primary, replica)
    finally:
        rt.close()


def test_restore_from_replica_with_the_primary_server_stopped(
        workspace: Workspace, own_s3_server: MotoServer, s3_server: MotoServer,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    make_mixed_tree(data, big_bytes=3 * 1024 * 1024, small_files=60)
    workspace.add_s3_store("primary", own_s3_server, f"primary-{uuid.uuid4().hex[:10]}")
    workspace.add_s3_store("offsite", s3_server, f"offsite-{uuid.uuid4().hex[:10]}")
    workspace.add_agency("planning", store="primary", replicas=["offsite"])
    workspace.add_directory_source("planning", "docs", [data])
    workspace.write()
    config = ["--config", str(workspace.config_path)]
    assert main([*config, "repo", "init", "--store", "primary"]) == 0
    assert main([*config, "backup", "--agency", "planning", "--no-progress"]) == 0
    _replicate(workspace)

    own_s3_server.stop()

    down = workspace.cli("restore", "--agency", "planning", "--source", "docs", "--target",
                         str(tmp_path / "from-primary"))
    assert down.returncode == ExitCode.STORE_UNREACHABLE, down.stderr
    assert "unreachable" in down.stderr and "Traceback" not in down.stderr
    assert "or restore from a replica: --from-replica offsite)" in down.stderr  # the way out
    assert len(down.stderr.strip().splitlines()) == 1

    target = tmp_path / "from-replica"
    result = workspace.cli("restore", "--agency", "planning", "--source", "docs",
                           "--from-replica", "offsite", "--target", str(target), check=True)
    assert "from store offsite" in result.stdout
    assert manifest(target / data.relative_to("/")) == manifest(data)

    assert main([*config, "restore", "--agency", "planning", "--source", "docs",
                 "--from-replica", "primary", "--target", str(tmp_path / "wrong")]
                ) == ExitCode.NOT_FOUND
    assert "is not a replica" in capsys.readouterr().err
