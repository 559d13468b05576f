"""Issue #14 hole 4 and two items of hole 6: snapshot tags are written by whoever holds the
agency's password, so `restore --all-sources` must not turn a hostile `source=` tag into a path;
restored dump files are private (0600); `--in-place` of a dump snapshot is refused."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from drbackup.config import load_config
from drbackup.errors import ExitCode
from drbackup.jobs.runtime import Runtime
from tests.support.trees import manifest
from tests.support.workspace import Workspace


def _forge(ws: Workspace, data: Path, tags: list[str]) -> str:
    """A snapshot made with the agency's own password (what the agency's host can do) carrying
    the given tags."""
    rt = Runtime.create(load_config(ws.write()))
    try:
        agency = rt.config.agency("planning")
        result = rt.restic.backup(rt.target(agency), [str(data)], tags=tags, host="evil-host")
    finally:
        rt.close()
    assert result.summary.snapshot_id
    return result.summary.snapshot_id


def test_all_sources_skips_snapshots_whose_source_tag_escapes(workspace: Workspace,
                                                             tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.mkdir()
    (good / "plan.txt").write_text("the real plan\n")
    payload = tmp_path / "payload"
    payload.mkdir()
    (payload / "evil-cron").write_text("* * * * * root sh -c 'owned'\n")
    workspace.add_agency("planning")
    workspace.add_directory_source("planning", "documents", [good])
    workspace.cli("repo", "init", check=True)
    workspace.cli("backup", "--agency", "planning", check=True)

    base = tmp_path / "restore" / "t"
    escape = tmp_path / "restore" / "escaped"      # base/../escaped
    absolute = tmp_path / "absolute-escape"
    # (restic trims whitespace from tags, so a newline cannot be forged through it: the unit
    # tests in tests/unit/jobs/test_hostile_tags.py cover that one.)
    hostile = ["../escaped", str(absolute), "a=b/../../x", "..", "Documents"]
    for value in hostile:
        _forge(workspace, payload, ["agency=planning", f"source={value}", "kind=directory"])
    # Two source= tags on one snapshot: which one names the directory? Neither.
    _forge(workspace, payload, ["agency=planning", "source=documents", "source=../escaped",
                                "kind=directory"])
    before = manifest(tmp_path / "restore") if (tmp_path / "restore").exists() else {}

    done = workspace.cli("restore", "--agency", "planning", "--all-sources", "--target",
                         str(base), "--no-progress")

    assert done.returncode == ExitCode.TARGET_REFUSED, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    skipped = [line for line in done.stderr.splitlines() if "skipped" in line]
    assert len(skipped) == len(hostile) + 1, done.stderr
    # Nothing was written outside the target, neither climbing up nor at an absolute path.
    assert not escape.exists() and not absolute.exists()
    assert before == {}
    assert sorted(p.name for p in (tmp_path / "restore").iterdir()) == ["t"]
    # The good source came back whole; no attacker file anywhere below the target either.
    assert sorted(p.name for p in base.iterdir()) == ["documents"]
    restored = base / "documents" / good.relative_to("/")
    assert (restored / "plan.txt").read_text() == "the real plan\n"
    assert not list(base.rglob("evil-cron"))


def test_restored_dump_files_are_private_and_in_place_is_refused(workspace: Workspace,
                                                               tmp_path: Path) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    (drops / "ledger.dump").write_bytes(b"secret ledger rows\n" * 50)
    workspace.add_agency("planning")
    workspace.add_source("planning", "dumps", "dumpdir", path=str(drops), settle="0s")
    workspace.cli("repo", "init", check=True)
    workspace.cli("backup", "--agency", "planning", check=True)

    target = tmp_path / "t"
    workspace.cli("restore", "--agency", "planning", "--source", "dumps", "--target",
                  str(target), "--no-progress", check=True)
    restored = target / "ledger.dump"
    assert restored.read_bytes() == b"secret ledger rows\n" * 50
    assert stat.S_IMODE(restored.stat().st_mode) == 0o600

    listed = json.loads(workspace.cli("--json", "snapshots", "--agency", "planning",
                                      check=True).stdout)
    assert listed, "no snapshot"
    refused = workspace.cli("restore", "--agency", "planning", "--source", "dumps",
                            "--in-place", "--yes", "--no-progress")
    assert refused.returncode == ExitCode.TARGET_REFUSED, refused.stdout + refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "dump" in refused.stderr
    assert not Path("/ledger.dump").exists()


def test_hostile_source_id_is_refused_on_the_command_line(workspace: Workspace,
                                                              tmp_path: Path) -> None:
    workspace.add_agency("planning")
    workspace.cli("repo", "init", check=True)
    refused = workspace.cli("restore", "--agency", "planning", "--source", "../../etc",
                            "--no-progress")
    assert refused.returncode == ExitCode.USAGE, refused.stdout + refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
