"""Restoring after a ransomware attack, on a real repository (#16): a directory source backed up
clean, then with every file replaced by random bytes of the same size (names kept, so the
content looks encrypted) — the guard calls the second snapshot suspect. Then `restore
--last-clean` gives back the pre-attack tree byte for byte and says why it chose that snapshot,
`snapshots` marks the suspect one, a drill of it is no plain pass, `report` shows the frozen
agency meeting no level, and `--all-sources --last-clean` takes a database source's snapshot
from before the freeze. Kept small (64 files of a few KiB, two backups): it runs in CI."""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from drbackup.errors import ExitCode
from tests.support.dbcheck import permits_sqlite
from tests.support.workspace import Workspace

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "report.schema.json"


@dataclass(frozen=True)
class Attacked:
    ws: Workspace
    data: Path
    before: dict[str, bytes]  # the tree before the attack, by relative path
    clean: str  # snapshot ids of source docs
    suspect: str
    db_snapshots: list[str]  # of source permits-db, oldest first


def _docx(index: int) -> bytes:
    """A real office file (a zip) of a few KiB, so the clean tree passes the guard."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("word/document.xml", f"<w:t>permit {index} </w:t>" * 300)
    return buffer.getvalue()


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _backup(ws: Workspace) -> dict[str, str]:
    """Back up every source; the new snapshot's id by source."""
    result = ws.cli("--json", "backup", "--agency", "planning", "--no-progress", check=True)
    return {run["source"]: run["summary"]["snapshot_id"] for run in json.loads(result.stdout)}


@pytest.fixture(scope="module")
def attacked(tmp_path_factory: pytest.TempPathFactory, restic_binary: str) -> Attacked:
    tmp_path = tmp_path_factory.mktemp("attacked")
    ws = Workspace(tmp_path / "ws")
    ws.config["daemon"]["restic"] = restic_binary
    data = tmp_path / "docs"
    for index in range(64):
        folder = data / f"dept-{index % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        if index % 2:
            (folder / f"letter-{index}.txt").write_text(
                f"Dear applicant {index}, your permit is granted.\n" * 100)
        else:
            (folder / f"form-{index}.docx").write_bytes(_docx(index))
    database = permits_sqlite(tmp_path / "permits.sqlite", 50)
    ws.add_agency("planning", rto="1h")
    ws.add_directory_source("planning", "docs", [data])
    ws.add_source("planning", "permits-db", "sqlite", path=str(database))
    ws.cli("repo", "init", check=True)
    first = _backup(ws)
    before = _tree(data)
    for path in data.rglob("*"):
        if path.is_file():
            path.write_bytes(os.urandom(path.stat().st_size))
    second = _backup(ws)
    return Attacked(ws, data, before, first["docs"], second["docs"],
                    [first["permits-db"], second["permits-db"]])


def test_restore_last_clean_gives_back_the_tree_from_before_the_attack(
        attacked: Attacked, tmp_path: Path) -> None:
    target = tmp_path / "back"
    result = attacked.ws.cli("restore", "--agency", "planning", "--source", "docs",
                             "--last-clean", "--target", str(target), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert (f"last clean snapshot {attacked.clean[:8]} of " in result.stdout
            and f", before suspect {attacked.suspect[:8]}" in result.stdout), result.stdout
    assert f"restoring snapshot {attacked.clean}" in result.stdout
    restored = _tree(target / attacked.data.relative_to("/"))
    assert len(restored) == 64 and restored == attacked.before


def test_snapshots_mark_the_suspect_snapshot(attacked: Attacked) -> None:
    ws = attacked.ws
    listed = {s["id"]: s for s in json.loads(
        ws.cli("--json", "snapshots", "--agency", "planning", check=True).stdout)}
    clean, suspect = listed[attacked.clean], listed[attacked.suspect]
    assert (clean["guard"], clean["suspect"], clean["suspect_reasons"]) == ("clean", False, [])
    assert suspect["guard"] == "suspect" and suspect["suspect"] is True
    assert any("look encrypted" in r for r in suspect["suspect_reasons"]), suspect
    for ident in attacked.db_snapshots:  # the guard judges directory sources only
        assert (listed[ident]["guard"], listed[ident]["suspect"]) == (None, False)
    table = ws.cli("snapshots", "--agency", "planning", "--source", "docs", check=True).stdout
    rows = {line.split()[0]: line for line in table.splitlines()[1:] if line.strip()}
    assert " SUSPECT " in rows[attacked.suspect[:8]] and " clean " in rows[attacked.clean[:8]]
    assert "1 SUSPECT (ransomware guard)" in table


def test_last_clean_refuses_a_snapshot_too_and_sources_without_verdicts(
        attacked: Attacked) -> None:
    ws = attacked.ws
    both = ws.cli("restore", "--agency", "planning", "--source", "docs", "--last-clean",
                  "--snapshot", attacked.clean[:8])
    assert both.returncode == ExitCode.USAGE, both.stderr
    assert both.stderr.strip().splitlines() == [
        "drbackup: error: --last-clean and --snapshot exclude each other (give one of "
        "them)"]
    database = ws.cli("restore", "--agency", "planning", "--source", "permits-db",
                      "--last-clean", "--no-progress")
    assert database.returncode == ExitCode.NOT_FOUND, database.stderr
    [line] = database.stderr.strip().splitlines()
    assert "no guard verdict for source 'permits-db'" in line and "sqlite source" in line
    assert "pass --snapshot ID" in line and "frozen since" in line
    assert not list(Path.cwd().glob("drbackup-restore-planning-*"))


def test_a_drill_of_the_suspect_snapshot_is_no_pass_and_the_report_shows_the_freeze(
        attacked: Attacked) -> None:
    ws = attacked.ws
    result = ws.cli("--json", "verify", "--agency", "planning", "--kind", "files")
    assert result.returncode == 0, result.stderr
    [drill] = json.loads(result.stdout)["drills"]
    assert drill["snapshot_id"] == attacked.suspect and drill["verdict"] == "warning"
    assert drill["findings"][0] == (
        f"snapshot {attacked.suspect[:8]} is suspect (ransomware guard): a byte-identical "
        "restore of it is not a proof of recoverability")
    assert drill["counts"]["ok"] == 64  # it did restore byte-identically

    report = json.loads(ws.cli("--json", "report", "--agency", "planning", check=True).stdout)
    jsonschema.validate(report, json.loads(SCHEMA.read_text()))
    [agency] = report["agencies"]
    assert agency["gbt_20988"]["level"] is None
    assert agency["findings"][0].startswith("retention frozen since ")
    assert f"snapshot {attacked.suspect[:8]} of source 'docs' is suspect" in agency["findings"][0]
    blockers = agency["gbt_20988"]["next_level_blockers"]
    assert "no level counts until it is released" in blockers[0]
    [docs] = [s for s in agency["sources"] if s["source"] == "docs"]
    assert docs["last_drill"]["verdict"] == "warning" and docs["last_good_drill"] is None
    assert any("not counted as a good drill" in f for f in docs["findings"])


def test_all_sources_last_clean_says_which_rule_chose_each_snapshot(
        attacked: Attacked, tmp_path: Path) -> None:
    result = attacked.ws.cli("--json", "restore", "--agency", "planning", "--all-sources",
                             "--last-clean", "--target", str(tmp_path / "all"), "--dry-run",
                             "--no-progress")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    chosen = {line["source"]: line for line in lines if line.get("event") == "summary"}
    assert chosen["docs"]["snapshot_id"] == attacked.clean
    assert chosen["docs"]["chosen_by"]["rule"] == "last-clean"
    db = chosen["permits-db"]
    assert db["snapshot_id"] == attacked.db_snapshots[0]  # the second was taken while frozen
    assert db["chosen_by"]["rule"] == "before-freeze"
    assert "the newest before the freeze began" in db["chosen_by"]["why"]
    assert not (tmp_path / "all").exists()
