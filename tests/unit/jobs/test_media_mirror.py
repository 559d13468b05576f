"""The medium's repository as a mirror of the agency's (jobs/media_mirror.py), on plain
directories shaped like a restic repository (content-addressed names, so no restic needed):
what is copied and in which order, what an incremental run writes and deletes, and the
source's faults (a file gone between listing and copy, a file not matching its name, a link).
The export with real restic, S3 and file systems: tests/integration/media/."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from drbackup.errors import ExitCode
from drbackup.jobs.media_export import read_back_problems
from drbackup.jobs.media_mirror import (
    COPY_ORDER,
    LocalRepository,
    S3Repository,
    SourceChanged,
    kind_of,
    mirror,
    restic_name,
)
from drbackup.jobs.repo_files_lock import RepositoryFilesBusy, repository_files_lock
from drbackup.media.readback import inventory


def _put(repo: Path, kind: str, body: bytes) -> str:
    name = hashlib.sha256(body).hexdigest()
    relative = f"data/{name[:2]}/{name}" if kind == "data" else f"{kind}/{name}"
    (repo / relative).parent.mkdir(parents=True, exist_ok=True)
    (repo / relative).write_bytes(body)
    return relative


def _repository(root: Path) -> tuple[Path, dict[str, bytes]]:
    repo = root / "source"
    files: dict[str, bytes] = {}
    (repo / "locks").mkdir(parents=True)
    (repo / "config").write_bytes(b"config-1")
    files["config"] = b"config-1"
    for kind, count in (("keys", 1), ("data", 4), ("index", 2), ("snapshots", 2)):
        for index in range(count):
            body = f"{kind}-{index}".encode() * 100
            files[_put(repo, kind, body)] = body
    return repo, files


def _tree(repo: Path) -> dict[str, bytes]:
    return {p.relative_to(repo).as_posix(): p.read_bytes() for p in repo.rglob("*")
            if p.is_file()}


class Recording(LocalRepository):
    """A local source that remembers the order files were read in, and can act before one."""

    def __init__(self, root: Path, before: Callable[[str], None] | None = None):
        super().__init__(root)
        self.read_order: list[str] = []
        self.before = before

    def _note(self, relative: str) -> None:
        if self.before is not None:
            self.before(relative)
        self.read_order.append(relative)

    def send(self, relative: str, out: int) -> int:
        self._note(relative)
        return super().send(relative, out)

    def read(self, relative: str, sink: Callable[[bytes | memoryview], None]) -> int:
        self._note(relative)
        return super().read(relative, sink)


def test_a_blank_medium_gets_every_file_in_restics_order(tmp_path: Path) -> None:
    source, files = _repository(tmp_path)
    medium = tmp_path / "medium" / "repo"
    reader = Recording(source)
    reader.workers = 1
    outcome = mirror(reader, medium)
    assert _tree(medium) == files  # byte for byte; restic's locks not carried
    assert not outcome.had_config and outcome.deleted == 0
    assert set(outcome.written) == set(files)
    assert all(outcome.written[r].sha256 == hashlib.sha256(b).hexdigest()
               for r, b in files.items())
    kinds = [kind_of(r) for r in reader.read_order]
    assert kinds == sorted(kinds, key=COPY_ORDER.index)  # packs first, config last
    assert (medium / "locks").is_dir()
    assert len(outcome.snapshot_ids) == 2


def test_an_incremental_run_writes_only_new_names_and_deletes_what_the_source_dropped(
        tmp_path: Path) -> None:
    source, files = _repository(tmp_path)
    medium = tmp_path / "medium" / "repo"
    mirror(LocalRepository(source), medium)
    added = _put(source, "data", b"a new pack" * 50)
    dropped = next(r for r in sorted(files) if r.startswith("data/"))
    (source / dropped).unlink()
    leftover = medium / "index" / ("ab" * 32 + ".tmp")  # an interrupted export's
    leftover.write_bytes(b"half")
    outcome = mirror(LocalRepository(source), medium)
    assert set(outcome.written) == {added} and outcome.had_config
    assert outcome.deleted == 2  # the dropped pack and the leftover temporary file
    assert _tree(medium) == _tree(source)


def test_a_changed_config_is_written_again(tmp_path: Path) -> None:
    source, _ = _repository(tmp_path)
    medium = tmp_path / "medium" / "repo"
    mirror(LocalRepository(source), medium)
    (medium / "config").write_bytes(b"config-2")  # same size, other bytes
    assert set(mirror(LocalRepository(source), medium).written) == {"config"}
    assert (medium / "config").read_bytes() == b"config-1"


def test_a_file_gone_between_listing_and_copy_stops_the_mirror(tmp_path: Path) -> None:
    source, files = _repository(tmp_path)
    pack = next(r for r in sorted(files) if r.startswith("data/"))

    def prune(relative: str) -> None:  # another host's prune, right after the listing
        if relative == pack:
            (source / pack).unlink()

    with pytest.raises(SourceChanged) as raised:
        mirror(Recording(source, prune), tmp_path / "medium" / "repo")
    assert raised.value.exit_code == ExitCode.MEDIA_INCOMPLETE
    assert pack in raised.value.message and "prune" in raised.value.message
    # Nothing after the packs was written: no index, no snapshot, no config on the medium.
    assert not (tmp_path / "medium" / "repo" / "config").exists()
    assert not list((tmp_path / "medium" / "repo" / "snapshots").iterdir())


def test_a_file_not_matching_its_name_is_found_by_the_read_back_and_removed(tmp_path: Path
                                                                           ) -> None:
    """The mirror does not hash what it copies (the names are the hashes); the export's
    read-back does, and removes the file so that the next export writes it again."""
    source, files = _repository(tmp_path)
    index = next(r for r in sorted(files) if r.startswith("index/"))
    (source / index).write_bytes(b"X" + files[index][1:])  # damaged in the store
    medium = tmp_path / "medium"
    outcome = mirror(LocalRepository(source), medium / "agencies" / "planning" / "repo")
    read, odd = inventory(medium, agencies={"planning"}, cold=False)
    problems = read_back_problems(medium, read, {"planning": outcome}, None)
    assert not odd and problems == [f"agencies/planning/repo/{index}: altered (read back, its "
                                    "SHA-256 is not its name: damaged in the agency's "
                                    "repository or on the medium; 'drbackup verify --kind "
                                    "check --read-data' tells)"]
    assert not (medium / "agencies" / "planning" / "repo" / index).exists()


def test_links_and_foreign_names_in_the_source_are_not_followed_or_copied(tmp_path: Path
                                                                          ) -> None:
    source, files = _repository(tmp_path)
    secret = tmp_path / "secret"
    secret.write_bytes(b"not the repository's")
    name = hashlib.sha256(secret.read_bytes()).hexdigest()
    os.symlink(secret, source / "snapshots" / name)
    (source / "data" / "00").mkdir(exist_ok=True)
    (source / "data" / "00" / ("11" * 32)).write_bytes(b"in the wrong directory")
    (source / "index" / (name + "-tmp-123")).write_bytes(b"restic's temporary file")
    medium = tmp_path / "medium" / "repo"
    mirror(LocalRepository(source), medium)
    assert _tree(medium) == files


def test_restic_names() -> None:
    digest = "ab" + "0" * 62
    assert restic_name("config") and restic_name(f"data/ab/{digest}")
    assert restic_name(f"index/{digest}") and restic_name(f"keys/{digest}")
    assert not restic_name(f"data/cd/{digest}") and not restic_name(f"locks/{digest}")
    assert not restic_name(f"index/{digest.upper()}") and not restic_name(f"index/{digest}.tmp")
    assert not restic_name("../config") and not restic_name(f"snapshots/{digest}/x")


def _lock(root: Path, store: str, exclusive: bool) -> AbstractContextManager[None]:
    return repository_files_lock(root, "planning", store, exclusive=exclusive, wait=0,
                                 what="prune" if exclusive else "media export")


def test_this_hosts_prune_waits_for_an_export_and_the_other_way_round(tmp_path: Path) -> None:
    with _lock(tmp_path, "local", False):
        with _lock(tmp_path, "local", False):
            pass  # two exports may read at once
        with pytest.raises(RepositoryFilesBusy) as raised, _lock(tmp_path, "local", True):
            pass
        assert raised.value.exit_code == ExitCode.REPO_LOCKED
        assert "a media export reads" in raised.value.message
        with _lock(tmp_path, "offsite", True):
            pass  # another repository is not held
    busy = pytest.raises(RepositoryFilesBusy, match="a forget or prune changes")
    with _lock(tmp_path, "local", True), busy, _lock(tmp_path, "local", False):
        pass


class FakeStore:
    """What S3Repository uses of the store's door: a listing with sizes, a streamed get."""

    def __init__(self, objects: dict[str, bytes], *, serve_more: bool = False):
        self.objects = objects
        self.serve_more = serve_more

    def list_sizes(self, prefix: str) -> dict[str, int]:
        return {k: len(v) for k, v in self.objects.items() if k.startswith(prefix)}

    def stream(self, key: str, sink: Callable[[bytes], None], *, chunk: int = 1 << 20) -> int:
        body = self.objects[key] + (b"more" * 1000 if self.serve_more else b"")
        for start in range(0, len(body), 7):
            sink(body[start:start + 7])
        return len(body)


def _objects(files: dict[str, bytes], prefix: str) -> dict[str, bytes]:
    objects = {f"{prefix}/{k}": v for k, v in files.items()}
    objects[f"{prefix}/fleet/host-a.json"] = b"{}"  # published beside the repository
    objects[f"{prefix}/locks/{'cd' * 32}"] = b"a lock"
    objects[f"{prefix}/configuration"] = b"not restic's"
    objects[f"{prefix}-other/config"] = b"another agency's"
    return objects


def test_an_s3_repository_is_listed_per_kind_and_streamed(tmp_path: Path) -> None:
    _, files = _repository(tmp_path)
    store = FakeStore(_objects(files, "city/planning"))
    medium = tmp_path / "medium" / "repo"
    outcome = mirror(S3Repository(store, "city/planning"), medium)  # type: ignore[arg-type]
    assert _tree(medium) == files and set(outcome.written) == set(files)


def test_an_s3_object_larger_than_listed_is_not_written_on(tmp_path: Path) -> None:
    _, files = _repository(tmp_path)
    store = FakeStore(_objects(files, "planning"), serve_more=True)
    with pytest.raises(SourceChanged, match="bytes when listed, more when read"):
        mirror(S3Repository(store, "planning"), tmp_path / "medium" / "repo")  # type: ignore[arg-type]
