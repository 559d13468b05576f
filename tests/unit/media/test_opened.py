"""A medium opened for reading (#19 §4): the snapshot ids restic reads back from it must be ones
its signed manifest lists, and its agency's part must match the manifest (pure: files only)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from drbackup.media.errors import MediaInvalidError
from drbackup.media.manifest import AgencyEntry, FileEntry, Manifest, SnapshotEntry
from drbackup.media.opened import OpenedMedium, agency_problems

SOURCE_ID, COPY_ID = "a" * 64, "b" * 64


def _manifest(files: dict[str, FileEntry]) -> Manifest:
    snapshot = SnapshotEntry(SOURCE_ID, "2026-12-07T10:00:00+00:00", ("/srv",), (), "host")
    return Manifest("safe-a", "host", "internal", 0.0, {"planning": AgencyEntry(1, (snapshot,))},
                    files)


def test_snapshot_ids_read_back_must_be_listed_and_well_formed() -> None:
    opened = OpenedMedium(Path("/m"), _manifest({}), None, {"planning"})
    opened.check_snapshot_ids("planning", [(COPY_ID, SOURCE_ID)])  # a copy naming its original
    with pytest.raises(MediaInvalidError, match="not in the medium's manifest"):
        opened.check_snapshot_ids("planning", [(COPY_ID, None)])
    with pytest.raises(MediaInvalidError, match="not 64 hex digits"):
        opened.check_snapshot_ids("planning", [("../../etc", SOURCE_ID)])
    with pytest.raises(MediaInvalidError, match="not checked"):
        opened.require_agency("other")
    assert opened.store_name == "media:safe-a"


def _entry(body: bytes) -> FileEntry:
    return FileEntry(len(body), hashlib.sha256(body).hexdigest())


def test_the_agency_part_is_checked_by_name_size_and_the_small_files_hashes(
        tmp_path: Path) -> None:
    repo = tmp_path / "agencies" / "planning" / "repo"
    (repo / "data" / "ab").mkdir(parents=True)
    (repo / "index").mkdir()
    (repo / "config").write_bytes(b"config")
    (repo / "index" / ("c" * 64)).write_bytes(b"index")
    (repo / "data" / "ab" / ("d" * 64)).write_bytes(b"pack")
    files = {"agencies/planning/repo/config": _entry(b"config"),
             f"agencies/planning/repo/index/{'c' * 64}": _entry(b"index"),
             f"agencies/planning/repo/data/ab/{'d' * 64}": _entry(b"pack")}
    manifest = _manifest(files)
    assert agency_problems(manifest, tmp_path, "planning") == []
    (repo / "data" / "ab" / ("d" * 64)).write_bytes(b"PACK")  # same size: restic's MAC finds it
    (repo / "index" / ("c" * 64)).write_bytes(b"INDEX")
    (repo / "config").write_bytes(b"config, grown")
    (repo / "index" / ("e" * 64)).write_bytes(b"extra")
    lines = [p.line() for p in agency_problems(manifest, tmp_path, "planning")]
    assert lines == ["agencies/planning/repo/config: truncated or grown (13 bytes, manifest says "
                     "6)",
                     f"agencies/planning/repo/index/{'c' * 64}: altered (SHA-256 differs from "
                     "the manifest)",
                     f"agencies/planning/repo/index/{'e' * 64}: extra (not in the manifest)"]
