"""A pg_dump directory-format dump in a drop folder is taken as one dump (never silently
skipped): selected when it holds toc.dat and only plain single-link files, refused with its
reason otherwise, streamed as a tar that starts with drbackup's marker, and not backed up when
it changes while it is read."""

from __future__ import annotations

import io
import os
import tarfile
import time
from pathlib import Path

from drbackup.config.models import DumpdirSource
from drbackup.sources.base import PlanContext
from drbackup.sources.dumpdir import plan_dumpdir, select_files
from drbackup.sources.dumpformat import DIRECTORY_MARKER
from drbackup.sources.pgdirdump import DirSummary, inspect_directory, stream_directory


def source(path: Path, **extra: object) -> DumpdirSource:
    return DumpdirSource.model_validate({"id": "drops", "kind": "dumpdir", "path": str(path),
                                         "settle": "0s", **extra})


def dump_dir(folder: Path, name: str = "permits.dir") -> Path:
    path = folder / name
    path.mkdir()
    (path / "toc.dat").write_bytes(b"PGDMP" + b"\0" * 95)
    (path / "3001.dat.gz").write_bytes(b"\x1f\x8b" + b"x" * 298)
    (path / ".DS_Store").write_bytes(b"not part of the dump")
    then = time.time() - 60
    for item in [*path.iterdir(), path]:
        os.utime(item, (then, then))
    return path


def test_a_directory_dump_is_selected_as_one_dump(tmp_path: Path) -> None:
    path = dump_dir(tmp_path)
    (tmp_path / "not-a-dump").mkdir()
    selection = select_files(source(tmp_path))
    [chosen] = selection.files
    assert chosen.path == path and chosen.directory and chosen.size == 400
    assert [(s.name, s.reason) for s in selection.skipped] == [
        ("not-a-dump", "is a directory (not a pg_dump -Fd dump: no toc.dat)")]
    [plan] = plan_dumpdir(source(tmp_path), PlanContext(agency="a"))
    try:
        assert plan.stdin_filename == "permits.dir.tar"
        assert {"file=permits.dir", "format=directory"} <= set(plan.extra_tags)
        assert plan.stdin_command is not None and "--directory" in plan.stdin_command
    finally:
        plan.run_cleanup()


def test_links_and_subdirectories_inside_refuse_the_dump_with_a_reason(tmp_path: Path) -> None:
    linked = dump_dir(tmp_path, "linked.dir")
    (linked / "3002.dat").symlink_to("/etc/passwd")
    hard = dump_dir(tmp_path, "hard.dir")
    os.link(hard / "3001.dat.gz", tmp_path / "elsewhere")
    nested = dump_dir(tmp_path, "nested.dir")
    (nested / "sub").mkdir()
    reasons = {s.name: s.reason for s in select_files(source(tmp_path)).skipped}
    assert reasons["linked.dir"].startswith("is a pg_dump directory dump whose entry "
                                            "'3002.dat' is a symlink")
    assert "'3001.dat.gz' has 2 hard links" in reasons["hard.dir"]
    assert "'sub' is a directory" in reasons["nested.dir"]
    assert select_files(source(tmp_path)).files == []


def test_folder_mode_says_why_it_does_not_take_a_directory_dump(tmp_path: Path) -> None:
    dump_dir(tmp_path)
    selection = select_files(source(tmp_path, per_file=False))
    assert selection.files == []
    assert [s.reason for s in selection.skipped] == [
        "is a pg_dump directory-format dump, taken with per_file = true only"]


def test_streamed_as_a_tar_marker_first_then_the_toc(tmp_path: Path) -> None:
    path = dump_dir(tmp_path)
    summary, why = inspect_directory(path)
    assert summary is not None and why is None
    out, err = io.BytesIO(), io.StringIO()
    assert stream_directory(path, summary, out, err) == 0, err.getvalue()
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == [DIRECTORY_MARKER, "toc.dat", "3001.dat.gz"]
        toc = tar.extractfile(members[1])
        assert toc is not None and toc.read() == (path / "toc.dat").read_bytes()


def test_a_dump_that_changed_or_was_swapped_is_not_streamed(tmp_path: Path) -> None:
    path = dump_dir(tmp_path)
    summary, _ = inspect_directory(path)
    assert summary is not None
    grown = DirSummary(summary.size - 1, summary.mtime_ns, summary.dev, summary.ino, 0)
    err = io.StringIO()
    assert stream_directory(path, grown, io.BytesIO(), err) == 1
    assert "changed while it was read" in err.getvalue()
    other = DirSummary(summary.size, summary.mtime_ns, summary.dev, summary.ino + 1, 0)
    err = io.StringIO()
    assert stream_directory(path, other, io.BytesIO(), err) == 1
    assert "no longer the directory that was selected" in err.getvalue()
    swapped = tmp_path / "swapped.dir"
    swapped.symlink_to(path)
    assert stream_directory(swapped, summary, io.BytesIO(), io.StringIO()) == 1


def test_a_file_swapped_for_a_link_after_selection_is_not_followed(tmp_path: Path) -> None:
    path = dump_dir(tmp_path)
    summary, _ = inspect_directory(path)
    assert summary is not None
    secret = tmp_path / "other-agency-secret"
    secret.write_bytes(b"S" * 300)
    (path / "3001.dat.gz").unlink()
    (path / "3001.dat.gz").symlink_to(secret)
    out, err = io.BytesIO(), io.StringIO()
    assert stream_directory(path, summary, out, err) == 1
    assert "3001.dat.gz cannot be read" in err.getvalue()
    assert b"SSSS" not in out.getvalue()
