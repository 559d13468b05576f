"""The export as a mirror of the agency's repository (#19 §1), with real restic on a local
store; the medium is a plain directory (the file systems are test_media_roundtrip.py's and
test_media_interrupted.py's subject):

- a prune on another host between the export's listing and its copy (real `restic forget
  --prune`, started from inside the copy, past this host's lock as another host would be):
  the export fails in one line with exit 27, the medium is marked incomplete, the next export
  completes it and restic check of the medium passes;
- this host's prune waits for an export (the repository-files lock) and fails with exit 11
  when the export outlasts daemon.lock_wait; done after it;
- a medium holding another repository for the agency (written by `restic init` + `restic
  copy`, as exports did before the mirror: its own id and key) becomes the mirror: the
  agency's repository id, and nothing of the old repository left."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from drbackup.config import load_config
from drbackup.errors import DrBackupError, ExitCode
from drbackup.jobs import media_export
from drbackup.jobs.media_export import export_media
from drbackup.jobs.media_mirror import LocalRepository
from drbackup.jobs.repo_files_lock import repository_files_lock
from drbackup.jobs.runtime import Runtime
from tests.support.mediaworld import restic
from tests.support.offsite import small_tree
from tests.support.workspace import Workspace


@dataclass
class Host:
    workspace: Workspace
    data: Path
    repo: Path
    password: Path
    cache: Path


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, restic_binary: str) -> Iterator[Host]:
    root = tmp_path_factory.mktemp("media-mirror")
    workspace = Workspace(root / "host")
    workspace.config["daemon"]["restic"] = restic_binary
    workspace.config["daemon"]["lock_wait"] = "1s"
    workspace.config["stores"]["local"] = {"path": str(root / "repos")}
    workspace.add_agency("planning", guard={"enabled": False})
    data = small_tree(root / "data")
    workspace.add_directory_source("planning", "documents", [data])
    workspace.cli("repo", "init", check=True)
    workspace.cli("backup", "--agency", "planning", check=True)
    password = Path(workspace.agency("planning")["password_file"])
    yield Host(workspace, data, root / "repos" / "planning", password, root / "cache")


def _repository_id(host: Host, repo: Path) -> str:
    shown = restic(host.password, repo, "cat", "config", cache=host.cache)
    assert shown.returncode == 0, shown.stderr
    value = json.loads(shown.stdout)["id"]
    assert isinstance(value, str)
    return value


class PrunedMeanwhile(LocalRepository):
    """The agency's repository as the export reads it, with another host's prune run right
    after the listing, before the first file is read."""

    def __init__(self, root: Path, prune: Callable[[], None]):
        super().__init__(root)
        self.prune: Callable[[], None] | None = prune
        self.once = threading.Lock()  # the copy runs on a few threads

    def send(self, relative: str, out: int) -> int:
        with self.once:
            prune, self.prune = self.prune, None
            if prune is not None:
                prune()
        return super().send(relative, out)


def test_a_prune_elsewhere_between_listing_and_copy_fails_the_export_and_the_next_completes(
        host: Host, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Something for the prune to remove: a file only the first snapshot holds.
    (host.data / "gone-soon.bin").write_bytes(os.urandom(512 * 1024))
    host.workspace.cli("backup", "--agency", "planning", check=True)
    (host.data / "gone-soon.bin").unlink()
    host.workspace.cli("backup", "--agency", "planning", check=True)

    def prune_elsewhere() -> None:  # plain restic: another host, not held by this one's lock
        # --retry-lock: the export's `restic snapshots` of the source may hold its lock.
        done = restic(host.password, host.repo, "--retry-lock", "1m", "forget", "--keep-last",
                      "1", "--prune", "--max-unused", "0", cache=host.cache)
        assert done.returncode == 0, done.stderr

    monkeypatch.setattr(media_export, "_source_files",
                        lambda rt, agency: PrunedMeanwhile(host.repo, prune_elsewhere))
    medium = tmp_path / "medium"
    medium.mkdir()
    rt = Runtime.create(load_config(host.workspace.write()))
    try:
        with pytest.raises(DrBackupError) as raised:
            export_media(rt, [rt.config.agency("planning")], medium, label="disk-p")
    finally:
        rt.close()
    assert raised.value.exit_code == ExitCode.MEDIA_INCOMPLETE
    assert "changed during the export" in raised.value.one_line()
    assert "\n" not in raised.value.message
    verified = host.workspace.cli("media", "verify", str(medium), "--no-restic-check")
    assert verified.returncode == 27, verified.stdout + verified.stderr
    monkeypatch.undo()
    done = host.workspace.cli("--json", "media", "export", "--agency", "planning", "--to",
                              str(medium), "--label", "disk-p")
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["agencies"][0]["snapshots"]) == 1  # after the prune
    checked = host.workspace.cli("media", "verify", str(medium))  # with restic check
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "(restic check passed)" in checked.stdout


def test_this_hosts_prune_waits_for_an_export(host: Host) -> None:
    state_dir = host.workspace.state_dir
    with repository_files_lock(state_dir, "planning", "local", exclusive=False, wait=0,
                               what="media export"):  # what an export holds while it copies
        waited = host.workspace.cli("prune", "--agency", "planning")
    assert waited.returncode == 11, waited.stdout + waited.stderr
    assert "a media export reads the repository's files" in waited.stderr
    assert "Traceback" not in waited.stderr
    done = host.workspace.cli("prune", "--agency", "planning")
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_medium_with_another_repository_becomes_the_mirror(host: Host, tmp_path: Path
                                                             ) -> None:
    medium = tmp_path / "medium"
    old = medium / "agencies" / "planning" / "repo"
    made = restic(host.password, old, "init", "--copy-chunker-params", "--from-repo",
                  str(host.repo), "--from-password-file", str(host.password), cache=host.cache)
    assert made.returncode == 0, made.stderr
    copied = restic(host.password, old, "copy", "--from-repo", str(host.repo),
                    "--from-password-file", str(host.password), cache=host.cache)
    assert copied.returncode == 0, copied.stderr
    old_files = {p.relative_to(old).as_posix() for p in old.rglob("*") if p.is_file()}
    agencys = _repository_id(host, host.repo)
    assert _repository_id(host, old) != agencys
    done = host.workspace.cli("--json", "media", "export", "--agency", "planning", "--to",
                              str(medium), "--label", "disk-old")
    assert done.returncode == 0, done.stderr
    assert _repository_id(host, old) == agencys
    mirrored = {p.relative_to(old).as_posix() for p in old.rglob("*") if p.is_file()}
    source = {p.relative_to(host.repo).as_posix() for p in host.repo.rglob("*")
              if p.is_file() and p.parts[-2] != "locks"}
    assert mirrored == source
    assert not (old_files - {"config"}) & mirrored  # the old key, packs, index: all gone
