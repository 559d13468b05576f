"""The ransomware guard's metrics from real backups: real restic backs up a real tree, the guard
in the backup job judges each snapshot, and `drbackup metrics` (which passes
`promtool check metrics`) reports clean, then, after a simulated attack (files replaced by
random bytes under a ransomware extension, ransom notes in every directory), the source suspect
and the agency frozen with the first snapshot still its last clean one; a release as a false
alarm clears both. Freezes are released through drbackup.state.guard (what `drbackup guard
release` does)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from drbackup.jobs.runtime import STATE_FILE
from drbackup.state import StateDB
from drbackup.state import guard as records
from tests.support.workspace import Workspace

DIRECTORIES = ("minutes", "plans", "permits")


def figures(workspace: Workspace) -> dict[tuple[str, str], float]:
    """(metric, source or agency) -> value of the guard families of one `drbackup metrics`."""
    printed = workspace.cli("metrics", check=True).stdout
    lint = subprocess.run(["promtool", "check", "metrics"], input=printed,
                          capture_output=True, text=True, timeout=60)
    assert (lint.returncode, lint.stdout + lint.stderr) == (0, "")
    found = {}
    for family in text_string_to_metric_families(printed):
        if family.name.startswith("drbackup_guard_"):
            for sample in family.samples:
                found[(sample.name, sample.labels.get("source", sample.labels["agency"]))] = (
                    sample.value)
    return found


def test_guard_metrics_through_an_attack_and_a_release(tmp_path: Path,
                                                       workspace: Workspace) -> None:
    data = tmp_path / "data"
    for directory in DIRECTORIES:
        (data / directory).mkdir(parents=True)
        for index in range(10):
            (data / directory / f"note-{index}.txt").write_text(
                f"{directory} record {index}\n" * 400)
    workspace.add_agency("planning")
    workspace.add_directory_source("planning", "documents", [data])
    workspace.add_directory_source("planning", "untouched", [tmp_path / "data" / "plans"])
    workspace.add_agency("archive", guard={"enabled": False})
    workspace.add_directory_source("archive", "documents", [data])
    workspace.cli("repo", "init", "--agency", "planning", check=True)
    before = figures(workspace)
    assert before == {("drbackup_guard_frozen", "planning"): 0,
                      ("drbackup_guard_suspect", "documents"): 0,
                      ("drbackup_guard_suspect", "untouched"): 0}  # no verdict yet, no archive

    workspace.cli("backup", "--agency", "planning", "--source", "documents", "--no-progress",
                  check=True)
    clean = figures(workspace)
    assert clean[("drbackup_guard_suspect", "documents")] == 0
    assert clean[("drbackup_guard_frozen", "planning")] == 0
    first = clean[("drbackup_guard_last_verdict_timestamp_seconds", "documents")]
    assert clean[("drbackup_guard_last_clean_timestamp_seconds", "documents")] == first

    for directory in DIRECTORIES:  # the attack
        for index in range(10):
            path = data / directory / f"note-{index}.txt"
            path.with_name(path.name + ".locked").write_bytes(os.urandom(path.stat().st_size))
            path.unlink()
        (data / directory / "README_DECRYPT.txt").write_text("Your files are encrypted.\n")
    attacked = workspace.cli("backup", "--agency", "planning", "--source", "documents",
                             "--no-progress")
    assert "SUSPECT" in attacked.stderr, attacked.stderr
    suspect = figures(workspace)
    assert suspect[("drbackup_guard_suspect", "documents")] == 1
    assert suspect[("drbackup_guard_frozen", "planning")] == 1
    assert suspect[("drbackup_guard_last_clean_timestamp_seconds", "documents")] == first
    assert suspect[("drbackup_guard_last_verdict_timestamp_seconds", "documents")] > first
    assert suspect[("drbackup_guard_suspect", "untouched")] == 0

    state = StateDB(workspace.state_dir / STATE_FILE)
    try:
        freeze = records.open_freeze(state, "planning")
        assert freeze is not None
        for verdict in records.suspects_in_freeze(state, freeze):
            records.mark_false_alarm(state, verdict, {})
        records.close_freeze(state, freeze, by="test", reason="a planned re-encryption",
                             false_alarm=True)
    finally:
        state.close()
    released = figures(workspace)
    assert released[("drbackup_guard_suspect", "documents")] == 0
    assert released[("drbackup_guard_frozen", "planning")] == 0
    assert released[("drbackup_guard_last_clean_timestamp_seconds", "documents")] == (
        suspect[("drbackup_guard_last_verdict_timestamp_seconds", "documents")])
