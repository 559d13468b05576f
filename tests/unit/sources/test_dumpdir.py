"""Which files of a drop folder are complete: settled for `settle`, or marked with .done."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

from drbackup.config.models import DumpdirSource
from drbackup.sources.base import PlanContext
from drbackup.sources.dumpdir import (
    DropFile,
    apply_caps,
    memory_key,
    plan_dumpdir,
    ready_files,
    select_files,
    stream_file,
)


class Memory:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get_value(self, key: str) -> str | None:
        return self.values.get(key)

    def set_value(self, key: str, value: str) -> None:
        self.values[key] = value


def source(path: Path, **extra: object) -> DumpdirSource:
    return DumpdirSource.model_validate({"id": "drops", "kind": "dumpdir", "path": str(path),
                                         **extra})


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_only_settled_files_matching_the_pattern_are_ready(tmp_path: Path) -> None:
    (tmp_path / "old.dump").write_bytes(b"x" * 100)
    (tmp_path / "fresh.dump").write_bytes(b"y" * 100)
    (tmp_path / "notes.txt").write_bytes(b"z")
    (tmp_path / ".hidden.dump").write_bytes(b"z")
    for name in ("old.dump", "notes.txt", ".hidden.dump"):
        age(tmp_path / name, 120)
    ready = ready_files(source(tmp_path, settle="60s", pattern="*.dump"))
    assert [f.path.name for f in ready] == ["old.dump"]


def test_marker_mode_takes_only_marked_files(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_bytes(b"a")
    (tmp_path / "b.sql").write_bytes(b"b")
    (tmp_path / "b.sql.done").write_bytes(b"")
    ready = ready_files(source(tmp_path, marker=True))
    assert [f.path.name for f in ready] == ["b.sql"]


def test_a_file_is_planned_once_and_again_when_replaced(tmp_path: Path) -> None:
    dump = tmp_path / "a.sql"
    dump.write_bytes(b"first")
    (tmp_path / "a.sql.done").write_bytes(b"")
    memory = Memory()
    config = source(tmp_path, marker=True)
    [plan] = plan_dumpdir(config, PlanContext("fin", memory))
    assert "file=a.sql" in plan.extra_tags and plan.stdin_filename == "a.sql"
    for action in plan.after_success:
        action("snap")
    plan.run_cleanup()
    assert memory.get_value(memory_key("fin", "drops", "a.sql"))
    assert plan_dumpdir(config, PlanContext("fin", memory)) == []
    dump.write_bytes(b"second, longer")
    plans = plan_dumpdir(config, PlanContext("fin", memory))
    assert len(plans) == 1
    plans[0].run_cleanup()


def test_files_below_min_size_are_never_taken(tmp_path: Path) -> None:
    (tmp_path / "empty.sql").write_bytes(b"")
    (tmp_path / "empty.sql.done").write_bytes(b"")
    assert plan_dumpdir(source(tmp_path, marker=True, min_size=1),
                        PlanContext("fin", Memory())) == []


def test_a_run_takes_at_most_max_files_and_the_rest_next_run(tmp_path: Path) -> None:
    for index in range(5):
        (tmp_path / f"d{index}.sql").write_bytes(b"x" * 10)
        (tmp_path / f"d{index}.sql.done").write_bytes(b"")
    memory = Memory()
    config = source(tmp_path, marker=True, max_files=2)
    taken: list[str] = []
    for _run in range(3):
        plans = plan_dumpdir(config, PlanContext("fin", memory))
        assert len(plans) <= 2
        for plan in plans:
            for action in plan.after_success:
                action("snap")
            plan.run_cleanup()
            taken.append(plan.stdin_filename or "")
    assert sorted(taken) == [f"d{i}.sql" for i in range(5)]


def test_a_huge_sparse_file_counts_its_size_and_is_never_taken_above_max_bytes(
        tmp_path: Path) -> None:
    sparse = tmp_path / "huge.sql"
    with sparse.open("wb") as handle:
        handle.truncate(50 << 30)  # 50 GiB of holes: nothing allocated, hours to read
    (tmp_path / "huge.sql.done").write_bytes(b"")
    (tmp_path / "small.sql").write_bytes(b"s" * 10)
    (tmp_path / "small.sql.done").write_bytes(b"")
    config = source(tmp_path, marker=True, max_bytes="1MiB")
    selection = apply_caps(config, select_files(config))
    assert [f.path.name for f in selection.files] == ["small.sql"]
    assert [s.name for s in selection.skipped] == ["huge.sql"]
    assert "larger" in selection.skipped[0].reason


def test_allocated_blocks_count_against_max_bytes(tmp_path: Path) -> None:
    item = DropFile(tmp_path / "a", size=10, mtime_ns=0, blocks=8)
    assert item.cost == 4096


def test_a_file_swapped_for_a_symlink_after_selection_is_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "other-agency.key"
    secret.write_bytes(b"TOP-SECRET")
    drops = tmp_path / "drops"
    drops.mkdir()
    dump = drops / "a.sql"
    dump.write_bytes(b"honest")
    (drops / "a.sql.done").write_bytes(b"")
    [chosen] = ready_files(source(drops, marker=True))
    dump.unlink()
    dump.symlink_to(secret)
    out, err = io.BytesIO(), io.StringIO()
    assert stream_file(dump, chosen, out, err) == 1
    assert out.getvalue() == b"" and "cannot be read" in err.getvalue()


def test_a_file_swapped_for_another_file_after_selection_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_bytes(b"honest")
    (tmp_path / "a.sql.done").write_bytes(b"")
    [chosen] = ready_files(source(tmp_path, marker=True))
    (tmp_path / "other").write_bytes(b"TOP-SEC")  # not the same inode, even if same size
    os.replace(tmp_path / "other", tmp_path / "a.sql")
    out, err = io.BytesIO(), io.StringIO()
    assert stream_file(tmp_path / "a.sql", chosen, out, err) == 1
    assert out.getvalue() == b"" and "no longer the file that was selected" in err.getvalue()


def test_a_fifo_swapped_in_after_selection_does_not_hang_the_guard(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_bytes(b"honest")
    (tmp_path / "a.sql.done").write_bytes(b"")
    [chosen] = ready_files(source(tmp_path, marker=True))
    (tmp_path / "a.sql").unlink()
    os.mkfifo(tmp_path / "a.sql")
    done = subprocess.run([sys.executable, "-m", "drbackup.sources.dumpdir",
                           str(tmp_path / "a.sql"), str(chosen.size), str(chosen.mtime_ns),
                           str(chosen.dev), str(chosen.ino)],
                          capture_output=True, timeout=30, check=False)
    assert done.returncode == 1 and done.stdout == b""


def test_the_marker_must_be_a_regular_file_not_a_link(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_bytes(b"a")
    (tmp_path / "a.sql.done").symlink_to("/etc/hostname")
    assert ready_files(source(tmp_path, marker=True)) == []
