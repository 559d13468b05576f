"""Snapshot tags as an attacker who holds the agency's password writes them (issue #14 hole 4,
fuzz strand): whatever the tag values, every id drbackup accepts from them fully matches the id
pattern, and every path derived from one stays inside its base."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import strategies as st

from drbackup.config.models import IDENTIFIER, is_identifier
from drbackup.engine import Snapshot
from drbackup.errors import TargetRefusedError
from drbackup.jobs.tags import ID_KEYS, contained, is_dump_snapshot, tag_id, tag_problem
from tests.support.fuzz import fuzz_pair

GOOD_ID = "a" * 64
BASE = Path("/srv/restore/planning")

# A grammar of hostile values: climbing, absolute, control characters, tag-list and key=value
# games, lookalikes, overlong, empty; mixed with plausible ids so both sides are exercised.
_hostile_atoms = st.sampled_from([
    "..", ".", "../..", "/", "/etc/cron.d", "../../etc/cron.d", "/root/.ssh/authorized_keys",
    "documents\n", "\ndocuments", "docu\nments", "docs\r", "docs\x00", "docs\x00../x", "a,b",
    "source=x", "a=b", "=", "", " ", "docs ", "DOCS", "ｄｏｃｓ", "docs\u2044x", "docs\u2215x",
    "do\u0441s", "-", "_x", "a" * 63, "a" * 64, "a" * 5000, "documents", "permits-db", "x_1",
])
hostile_values = st.one_of(
    _hostile_atoms,
    st.lists(_hostile_atoms, min_size=1, max_size=4).map("".join),
    st.lists(_hostile_atoms, min_size=1, max_size=3).map("/".join),
    st.text(max_size=80),
    st.from_regex(IDENTIFIER, fullmatch=True))
keys = st.sampled_from([*ID_KEYS, "database", "format", "file"])
tag_lists = st.lists(st.tuples(keys, hostile_values).map(lambda kv: f"{kv[0]}={kv[1]}"),
                     max_size=6)
snapshot_ids = st.one_of(st.just(GOOD_ID), st.text(max_size=70),
                         st.from_regex(r"[0-9a-f]{4,70}", fullmatch=True))


def _snapshot(tags: list[str], snapshot_id: str = GOOD_ID) -> Snapshot:
    return Snapshot(id=snapshot_id, time=datetime(2026, 12, 6, tzinfo=UTC), hostname="h",
                    paths=["/srv/docs"], tags=tags)


def _inside(base: Path, path: Path) -> bool:
    return os.path.normpath(path).startswith(os.path.normpath(base) + os.sep) \
        and ".." not in path.relative_to(base).parts


def _tags_invariant(tags: list[str], snapshot_id: str) -> None:
    snapshot = _snapshot(tags, snapshot_id)
    problem = tag_problem(snapshot)
    for key in ID_KEYS:
        value = tag_id(snapshot, key)
        if value is not None:
            assert IDENTIFIER.fullmatch(value), (key, value)
            assert "\n" not in value and "/" not in value
    if problem is None:
        # A trusted snapshot: 64-hex id, each id tag at most once, every value a full match,
        # and the directory restore --all-sources derives stays inside the target.
        assert len(snapshot.id) == 64 and all(c in "0123456789abcdef" for c in snapshot.id)
        source = tag_id(snapshot, "source")
        if source is not None:
            assert _inside(BASE, contained(BASE, source))
        for key in ID_KEYS:
            assert len([t for t in tags if t.startswith(f"{key}=")]) <= 1
    else:
        assert "\n" not in problem and len(problem) < 300  # one printable line
    is_dump_snapshot(snapshot)  # never raises


test_tags_fuzz, test_tags_fuzz_long = fuzz_pair(_tags_invariant, tag_lists, snapshot_ids,
                                                examples=400)


def _contained_invariant(name: str) -> None:
    try:
        path = contained(BASE, name)
    except TargetRefusedError as exc:
        assert "\n" not in exc.one_line()
        return
    assert _inside(BASE, path) and path.parent == BASE, (name, path)


test_contained_fuzz, test_contained_fuzz_long = fuzz_pair(_contained_invariant, hostile_values,
                                                          examples=400)


@pytest.mark.parametrize("value", ["planning\n", "planning\r\n", "\nplanning", "plan\nning",
                                   "planning\x00"])
def test_an_id_with_a_newline_is_not_read_back_from_a_tag(value: str) -> None:
    snapshot = _snapshot([f"agency={value}", f"source={value}"])
    assert not is_identifier(value)
    assert tag_id(snapshot, "agency") is None and tag_id(snapshot, "source") is None
    assert tag_problem(snapshot) is not None


@pytest.mark.parametrize("value", ["../escaped", "/etc/cron.d", "..", "a/b", ""])
def test_climbing_source_tags_name_no_directory(value: str) -> None:
    snapshot = _snapshot(["agency=planning", f"source={value}"])
    assert tag_problem(snapshot) is not None and tag_id(snapshot, "source") is None
    with pytest.raises(TargetRefusedError):
        contained(BASE, value)


def test_contained_refuses_an_existing_symlink(tmp_path: Path) -> None:
    (tmp_path / "docs").symlink_to("/etc")
    with pytest.raises(TargetRefusedError):
        contained(tmp_path, "docs")
    assert contained(tmp_path, "other") == tmp_path / "other"


def test_dump_snapshots_are_recognised() -> None:
    assert is_dump_snapshot(_snapshot(["kind=postgres"]))
    assert is_dump_snapshot(_snapshot(["kind=dumpdir", "format=file"]))
    assert not is_dump_snapshot(_snapshot(["kind=dumpdir", "format=folder"]))
    assert not is_dump_snapshot(_snapshot(["kind=directory"]))
