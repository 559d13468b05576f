"""A repository init killed between restic's two writes (the key, then the config) leaves a
repository every command calls missing and `restic init` refuses ("already contains keys"). The
first replication into a new replica creates it, so a crash there leaves exactly this: drbackup
must say so in one line with the remedy, not retry blindly forever with restic's words."""

from __future__ import annotations

from pathlib import Path

from drbackup.errors import ExitCode
from tests.integration.test_failures import assert_one_line_error
from tests.support.workspace import Workspace


def test_replica_left_with_a_key_but_no_config(workspace: Workspace, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("alpha\n")
    mirror = tmp_path / "mirror"
    workspace.config["stores"]["mirror"] = {"path": str(mirror)}
    workspace.add_agency("planning", replicas=["mirror"])
    workspace.add_directory_source("planning", "docs", [data])
    workspace.cli("repo", "init", check=True)  # the primary and the replica
    # What a kill between the key and the config write leaves behind.
    (mirror / "planning" / "config").unlink()
    assert list((mirror / "planning" / "keys").iterdir())

    result = workspace.cli("replicate", "--agency", "planning")
    line = assert_one_line_error(result, ExitCode(result.returncode), "holds a key but no config",
                                 "interrupted", "keys/ folder")
    assert "Traceback" not in result.stderr, line

    # The remedy the message names works.
    for key in (mirror / "planning" / "keys").iterdir():
        key.unlink()
    workspace.cli("replicate", "--agency", "planning", check=True)
