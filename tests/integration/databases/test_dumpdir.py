"""Dump drop-folders: a 200 MB dump written slowly over 20 s is backed up once, only after it is
complete, and comes back with the same SHA-256."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

from drbackup.config import load_config
from drbackup.jobs.backup import run_backup
from drbackup.jobs.runtime import Runtime
from tests.support.dbcheck import local_snapshots, runs
from tests.support.workspace import Workspace

SIZE_MB = 200
WRITE_SECONDS = 20.0


def write_slowly(path: Path, digest: hashlib._Hash, done: threading.Event) -> None:
    """SIZE_MB of random data (no sparse regions), 1 MiB at a time, over WRITE_SECONDS."""
    started = time.monotonic()
    with path.open("wb") as handle:
        for index in range(SIZE_MB):
            chunk = os.urandom(1 << 20)
            handle.write(chunk)
            handle.flush()
            digest.update(chunk)
            pause = started + (index + 1) * WRITE_SECONDS / SIZE_MB - time.monotonic()
            if pause > 0:
                time.sleep(pause)
    done.set()


def test_slow_dump_is_backed_up_once_after_it_is_complete(workspace: Workspace,
                                                          tmp_path: Path) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    workspace.add_agency("finance")
    workspace.add_source("finance", "dumps", "dumpdir", path=str(drops), settle="3s",
                         pattern="*.dump")
    workspace.cli("repo", "init", check=True)
    config = load_config(workspace.write())
    agency = config.agency("finance")
    source = agency.source("dumps")
    rt = Runtime.create(config)

    dump = drops / "ledger-2026-11-28.dump"
    digest = hashlib.sha256()
    done = threading.Event()
    writer = threading.Thread(target=write_slowly, args=(dump, digest, done))
    writer.start()
    try:
        early = []
        while not done.is_set():
            early.append(run_backup(rt, agency, source).result)
            time.sleep(0.5)
    finally:
        writer.join()
    assert len(early) >= 5 and set(early) == {"skipped"}, early

    # Complete, but not yet settled for 3 s: still not taken.
    assert run_backup(rt, agency, source).result == "skipped"
    time.sleep(3.2)
    taken = workspace.cli("backup", "--agency", "finance", check=True)
    assert "ledger-2026-11-28.dump" in taken.stdout
    assert run_backup(rt, agency, source).result == "skipped"
    rt.close()

    [snapshot] = local_snapshots(workspace.state_dir, "finance",
                                 Path(workspace.agency("finance")["password_file"]))
    assert {"kind=dumpdir", "file=ledger-2026-11-28.dump"} <= set(snapshot.tags)
    results = [r.result for r in runs(workspace.state_dir, agency="finance", source="dumps")]
    assert results.count("success") == 1 and "failed" not in results
    target = tmp_path / "restored"
    workspace.cli("restore", "--agency", "finance", "--source", "dumps", "--target",
                  str(target), check=True)
    restored = target / "ledger-2026-11-28.dump"
    assert restored.stat().st_size == SIZE_MB << 20
    with restored.open("rb") as handle:
        assert hashlib.file_digest(handle, "sha256").hexdigest() == digest.hexdigest()


def test_folder_mode_takes_new_marked_files_in_one_snapshot(workspace: Workspace,
                                                            tmp_path: Path) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    for name in ("a.sql", "b.sql", "c.sql"):
        (drops / name).write_bytes(os.urandom(4096))
    for name in ("a.sql", "b.sql"):
        (drops / f"{name}.done").write_bytes(b"")
    workspace.add_agency("finance")
    workspace.add_source("finance", "dumps", "dumpdir", path=str(drops), marker=True,
                         per_file=False)
    workspace.cli("repo", "init", check=True)
    config = load_config(workspace.write())
    agency = config.agency("finance")
    rt = Runtime.create(config)
    try:
        first = run_backup(rt, agency, agency.source("dumps"))
        again = run_backup(rt, agency, agency.source("dumps"))
    finally:
        rt.close()
    assert first.result == "success" and again.result == "skipped"
    [snapshot] = local_snapshots(workspace.state_dir, "finance",
                                 Path(workspace.agency("finance")["password_file"]))
    assert sorted(snapshot.paths) == [str(drops / "a.sql"), str(drops / "b.sql")]
