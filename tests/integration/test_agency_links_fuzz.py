"""Fuzz strand for drop folders through real backups (#14): a drop folder built from the grammar
of hostile names and kinds (tests/support/hostile.py) next to another agency's data; `drbackup
backup` of the attacker's source with the real restic. On every case: the backup succeeds, the
attacker's repository holds every honest file's bytes under its own `file=` tag and not one byte
of the other agency's secret or password, and each refused entry is named on stderr."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from drbackup.sources.dumpdir import name_refusal
from tests.support.dbcheck import local_snapshots
from tests.support.fuzz import fuzz_pair
from tests.support.hostile import Entry, build, entries, repository_bytes
from tests.support.workspace import Workspace

SECRET = b"HEALTH-PATIENT-RECORD-2b9e41"


def _backup_invariants(restic_binary: str, items: list[Entry]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        workspace = Workspace(root / "ws")
        workspace.config["daemon"]["restic"] = restic_binary
        workspace.add_agency("health")
        records = root / "health"
        records.mkdir()
        secret = records / "records.txt"
        secret.write_bytes(SECRET)
        workspace.add_directory_source("health", "records", [records])
        drops = root / "finance-drops"
        drops.mkdir()
        workspace.add_agency("finance")
        workspace.add_source("finance", "dumps", "dumpdir", path=str(drops), marker=True,
                             pattern="*", max_bytes="1GiB")
        honest = build(drops, items, secret)
        health_password = workspace.passwords["health"].encode()

        workspace.cli("repo", "init", check=True)
        result = workspace.cli("backup", "--agency", "finance", "--source", "dumps")

        accepted = {n: b for n, b in honest.items() if name_refusal(n) is None and b}
        assert result.returncode == 0, result.stderr
        stored = repository_bytes(workspace, "finance", restic_binary)
        assert SECRET not in stored and health_password not in stored
        for body in accepted.values():
            assert body in stored
        snapshots = local_snapshots(workspace.state_dir, "finance",
                                    Path(workspace.agency("finance")["password_file"]))
        assert sorted(str(s.tag("file")) for s in snapshots) == sorted(accepted)
        said = "\n".join(_messages(result.stderr))
        for item in items:
            if item.name not in accepted and item.kind not in ("regular", "empty"):
                assert f"{item.name!r} not backed up" in said, (item, said)


def _messages(stderr: str) -> list[str]:
    """The log lines' messages (JSON lines when stderr is not a terminal)."""
    found = []
    for line in stderr.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            found.append(line)
            continue
        found.append(str(entry.get("msg", "")) if isinstance(entry, dict) else line)
    return found


test_hostile_drop_folders_backed_up, test_hostile_drop_folders_backed_up_long = fuzz_pair(
    _backup_invariants, entries, examples=3)
