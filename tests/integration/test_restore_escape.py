"""A restore never writes outside its target: '..' in --include/--exclude is refused before
restic runs, symlinks in the snapshot that point outside are restored as links (never
followed), and a symlink already in an --overwrite target is not written through."""

from __future__ import annotations

import os
from pathlib import Path

from drbackup.errors import ExitCode
from tests.support.trees import manifest
from tests.support.workspace import Workspace


def _setup(workspace: Workspace, tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "data"
    (data / "docs").mkdir(parents=True)
    (data / "docs" / "a.txt").write_text("alpha\n")
    (data / "docs" / "b.txt").write_text("beta\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "sentinel.txt").write_text("must stay as it is\n")
    (data / "abs-link").symlink_to(outside)             # absolute, pointing out of the tree
    (data / "up-link").symlink_to("../outside/sentinel.txt")  # relative, climbing out
    workspace.add_agency("planning")                      # the embedded local store
    workspace.add_directory_source("planning", "documents", [data])
    workspace.cli("repo", "init", check=True)
    workspace.cli("backup", "--agency", "planning", check=True)
    return data, outside


def test_restore_stays_inside_its_target(workspace: Workspace, tmp_path: Path) -> None:
    data, outside = _setup(workspace, tmp_path)
    before = manifest(outside)

    # 1. '..' in --include or --exclude: refused with one line, nothing restored.
    for flag in ("--include", "--exclude"):
        refused = workspace.cli("restore", "--agency", "planning", "--source", "documents",
                                "--target", str(tmp_path / "t1"), flag,
                                f"{data}/../outside/sentinel.txt")
        assert refused.returncode == ExitCode.TARGET_REFUSED, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        assert "'..'" in refused.stderr and "Traceback" not in refused.stderr
        assert not (tmp_path / "t1").exists()

    # 2. Links that point outside come back as the same links; nothing is written through them.
    target = tmp_path / "t2"
    workspace.cli("restore", "--agency", "planning", "--source", "documents", "--target",
                  str(target), check=True)
    restored = target / data.relative_to("/")
    assert manifest(restored) == manifest(data)
    assert os.readlink(restored / "abs-link") == str(outside)
    assert os.readlink(restored / "up-link") == "../outside/sentinel.txt"
    assert manifest(outside) == before

    # 3. --overwrite into a target where a directory on the way is a symlink to the outside:
    #    restic replaces the link with a directory instead of following it.
    target3 = tmp_path / "t3"
    trap = target3 / data.relative_to("/") / "docs"
    trap.parent.mkdir(parents=True)
    trap.symlink_to(outside)
    workspace.cli("restore", "--agency", "planning", "--source", "documents", "--target",
                  str(target3), "--overwrite", check=True)
    assert manifest(outside) == before, "a restore wrote through a symlink to the outside"
    assert not trap.is_symlink()
    assert (trap / "a.txt").read_text() == "alpha\n"
