"""Which files of a drop folder are complete: settled for `settle`, or marked with .done."""

from __future__ import annotations

import os
import time
from pathlib import Path

from drbackup.config.models import DumpdirSource
from drbackup.sources.base import PlanContext
from drbackup.sources.dumpdir import memory_key, plan_dumpdir, ready_files


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
