"""The guard's walk names the files restic stores (#16 item 5): a guarded backup job of a source
with excludes lists exactly the snapshot's files (restic's `ls`); in the long run, each of 19
exclude patterns given to real restic and to the walk gives the same files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from drbackup.guard import listing
from drbackup.guard.walk import Excludes, Walk
from drbackup.jobs.backup import run_backup
from drbackup.jobs.guard import listing_path
from drbackup.jobs.tags import snapshot_tags
from tests.support.offsite import runtime
from tests.support.workspace import Workspace

FILES = ["a.txt", "b.tmp", "docs/c.docx", "docs/.cache/x.bin", "docs/sub/d.tmp",
         "docs/sub/deep/e.txt", "build/out.o", "srv/keep/f.txt", "srv/other/g.txt",
         "[x]/h.txt", "sp ace/i.txt", "docs/link"]
CASES = [["*.tmp"], [".cache"], ["docs"], ["sub/deep"], ["docs/deep"], ["{root}/b.tmp"],
         ["/b.tmp"], ["{root}/docs/**/*.tmp"], ["**/e.txt"], ["{root}/docs/**"], ["[ab].t?t"],
         ["[^a].tmp"], ["\\[x\\]"], ["sp ace/"], ["srv", "!srv/keep"], ["srv/*", "!srv/keep"],
         ["d*/s*"], ["docs/*/deep"], ["link"]]


def _share(root: Path) -> None:
    for rel in FILES[:-1]:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rel.encode())
    (root / "docs" / "link").symlink_to(root / "a.txt")


@pytest.mark.slow  # 19 backups: ~40 s here
def test_the_walk_and_restic_exclude_the_same_files(workspace: Workspace,
                                                    tmp_path: Path) -> None:
    root = tmp_path / "share"
    _share(root)
    workspace.add_agency("planning", guard={"enabled": False})
    workspace.add_directory_source("planning", "share", [root])
    workspace.cli("repo", "init", check=True)
    rt = runtime(workspace)
    agency = rt.config.agency("planning")
    target = rt.target(agency)
    try:
        for case in CASES:
            patterns = [p.replace("{root}", str(root)) for p in case]
            result = rt.restic.backup(target, [str(root)], excludes=patterns, host=rt.hostname,
                                      tags=snapshot_tags(agency, agency.sources[0]))
            assert result.summary.snapshot_id is not None
            stored = {os.path.relpath(node.path, root)
                      for node in rt.restic.ls(target, result.summary.snapshot_id)
                      if node.type != "dir"}
            walked = {os.path.relpath(path, root)
                      for path, _ in Walk([str(root)], Excludes.of(patterns)).files()}
            assert walked == stored, case
    finally:
        rt.close()


def test_a_guarded_backup_lists_the_files_of_its_snapshot(workspace: Workspace,
                                                          tmp_path: Path) -> None:
    root = tmp_path / "share"
    _share(root)
    workspace.add_agency("planning")
    workspace.add_directory_source("planning", "share", [root], exclude=["*.tmp", ".cache"],
                                   watch=False)
    workspace.cli("repo", "init", check=True)
    rt = runtime(workspace)
    try:
        agency = rt.config.agency("planning")
        outcome = run_backup(rt, agency, agency.sources[0])
        assert outcome.guard is not None and not outcome.guard.suspect, outcome.guard
        snapshot = outcome.summary.snapshot_id
        assert snapshot is not None
        stored = {node.path for node in rt.restic.ls(rt.target(agency), snapshot)
                  if node.type != "dir"}
        saved = listing.load(listing_path(rt, "planning", "share"))
        assert saved is not None and saved.snapshot_id == snapshot
        assert set(saved.entries) == stored and len(stored) == len(FILES) - 3
        assert outcome.guard.numbers["files"] == len(stored)
    finally:
        rt.close()
