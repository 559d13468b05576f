"""`restic version` is remembered per binary file: a second engine does not run it again, and a
binary replaced at the same path (another inode, size or mtime) is asked afresh."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from drbackup.engine import Restic, ResticSettings
from drbackup.engine.errors import ResticTooOld


def _fake_restic(path: Path, version: str, calls: Path) -> None:
    scratch = path.with_suffix(".new")
    scratch.write_text(f'#!/bin/sh\necho "$1" >> "{calls}"\n'
                       f'echo "restic {version} compiled with go1.24.4 on linux/amd64"\n')
    scratch.chmod(0o755)
    os.replace(scratch, path)  # a new file (new inode), as a package upgrade writes it


def test_version_is_remembered_until_the_binary_changes(tmp_path: Path) -> None:
    binary, calls, memo = tmp_path / "restic", tmp_path / "calls", tmp_path / "memo.json"
    _fake_restic(binary, "0.18.0", calls)
    settings = ResticSettings(binary=str(binary), cache_dir=tmp_path, version_memo=memo)

    assert Restic(settings).require_supported().version == (0, 18, 0)
    assert Restic(settings).require_supported().version == (0, 18, 0)
    assert calls.read_text().split() == ["version"]

    _fake_restic(binary, "0.14.0", calls)
    with pytest.raises(ResticTooOld):
        Restic(settings).require_supported()
    assert calls.read_text().split() == ["version", "version"]


def test_an_unwritable_or_damaged_memo_costs_only_a_run(tmp_path: Path) -> None:
    binary, calls = tmp_path / "restic", tmp_path / "calls"
    _fake_restic(binary, "0.18.0", calls)
    damaged = tmp_path / "memo.json"
    damaged.write_text("{not json")
    for memo in (damaged, tmp_path / "missing-dir" / "memo.json"):
        settings = ResticSettings(binary=str(binary), cache_dir=tmp_path, version_memo=memo)
        assert Restic(settings).require_supported().version == (0, 18, 0)
