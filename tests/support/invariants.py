"""What must hold after any fault (a crash, a network cut, a full disk): the repository passes
`restic check`, every run the state records as good names a snapshot that exists and restores to
the data, and the state database passes PRAGMA integrity_check. Checked directly against the
store, with the real restic, bypassing any fault proxy."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from drbackup.engine import RepoTarget, Restic, ResticSettings
from drbackup.store import S3Location, read_credentials_file
from tests.support.servers import MotoServer
from tests.support.trees import manifest
from tests.support.workspace import Workspace


@dataclass(frozen=True)
class RunRow:
    id: int
    job: str
    result: str
    snapshot_id: str | None
    error: str | None


def state_runs(workspace: Workspace) -> list[RunRow]:
    path = workspace.state_dir / "state.db"
    if not path.exists():
        return []
    with sqlite3.connect(path) as conn:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'runs'").fetchone():
            return []  # created but never migrated (e.g. the disk was full)
        rows = conn.execute(
            "SELECT id, job, result, snapshot_id, error FROM runs ORDER BY id").fetchall()
    return [RunRow(*row) for row in rows]


def state_integrity(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def direct_s3_target(workspace: Workspace, server: MotoServer, bucket: str, store: str,
                     agency: str) -> RepoTarget:
    """The agency's repository straight on the S3 server (not through a proxy)."""
    credentials = read_credentials_file(workspace.root / "secrets" / f"{store}.credentials")
    url = S3Location.parse(server.url(bucket)).child(agency).restic_url
    return RepoTarget(url, workspace.root / "secrets" / f"{agency}.password",
                      backend_env=credentials.restic_env("us-east-1"), label=f"{agency}@direct")


def local_target(workspace: Workspace, agency: str) -> RepoTarget:
    return RepoTarget(str(workspace.state_dir / "repos" / agency),
                      workspace.root / "secrets" / f"{agency}.password", label=f"{agency}@local")


def restic_for(workspace: Workspace, cache: Path) -> Restic:
    return Restic(ResticSettings(binary=workspace.config["daemon"]["restic"], cache_dir=cache,
                                 timeout=timedelta(minutes=10)))


def assert_repository_consistent(restic: Restic, target: RepoTarget) -> None:
    """restic check passes; stale locks of killed processes are removed first, as the
    daemon's maintenance does (unlock removes only stale ones)."""
    restic.unlock(target)
    result = restic.check(target)
    assert result.ok, f"restic check failed on {target.display}: {result.errors[:5]}"


def assert_good_runs_are_real(workspace: Workspace, restic: Restic, target: RepoTarget,
                              data_root: Path | None, scratch: Path, *,
                              newest_only: bool = False) -> int:
    """Every backup the state calls good names a snapshot in the repository; the newest
    restores identical to `data_root` (unchanged since) when given. Returns how many."""
    snapshots = {s.id for s in restic.snapshots(target)}
    good = [r for r in state_runs(workspace) if r.job == "backup"
            and r.result in ("success", "warning")]
    for run in good[-1:] if newest_only else good:  # newest_only: retention forgets others
        assert run.snapshot_id in snapshots, (
            f"run {run.id} is recorded as {run.result} with snapshot {run.snapshot_id}, "
            "which the repository does not have")
    if good and data_root is not None:
        restored = scratch / f"verify-{good[-1].id}"
        restic.restore(target, str(good[-1].snapshot_id), restored)
        assert manifest(restored / data_root.relative_to("/")) == manifest(data_root), (
            f"snapshot {good[-1].snapshot_id} does not restore to the data")
    return len(good)


def assert_good_replications_are_real(workspace: Workspace, on_replica: Collection[str]) -> int:
    """Every replication the state records as good copied snapshots the replica has:
    `on_replica` are the replica's snapshots by source id (a copy's `original`). Returns how
    many good replications were checked."""
    with sqlite3.connect(workspace.state_dir / "state.db") as conn:
        rows = conn.execute("SELECT id, details FROM runs WHERE job = 'replicate' "
                            "AND result IN ('success', 'warning') ORDER BY id").fetchall()
    for run_id, raw in rows:
        copied = json.loads(raw or "{}").get("copied_ids", [])
        lost = [i for i in copied if i not in on_replica]
        assert not lost, (f"replication run {run_id} is recorded as good with snapshot(s) "
                          f"{lost} the replica does not have")
    return len(rows)
