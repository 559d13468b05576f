"""Typed engine values: snapshot records round-trip through the state cache; backup items parse."""

from __future__ import annotations

import json

from drbackup.engine.models import BackupItem, Snapshot

RESTIC_RECORD = {
    "time": "2026-11-20T14:00:01.123456789+08:00",
    "parent": "a" * 64,
    "tree": "b" * 64,
    "paths": ["/srv/agency/docs"],
    "hostname": "dr-host",
    "username": "root",
    "tags": ["agency=planning", "source=docs"],
    "program_version": "restic 0.18.0",
    "summary": {"backup_start": "2026-11-20T14:00:01.1+08:00",
                "backup_end": "2026-11-20T14:00:09.9+08:00", "data_added": 123,
                "total_files_processed": 4, "total_bytes_processed": 5678},
    "id": "c" * 64,
    "short_id": "cccccccc",
}


def test_to_json_round_trips_through_text() -> None:
    snapshot = Snapshot.from_json(RESTIC_RECORD)
    again = Snapshot.from_json(json.loads(json.dumps(snapshot.to_json())))
    assert again == snapshot
    assert again.time == snapshot.time and again.time.utcoffset() == snapshot.time.utcoffset()


def test_to_json_without_optional_fields() -> None:
    bare = {"id": "d" * 64, "time": "2026-11-20T06:00:00Z"}
    snapshot = Snapshot.from_json(bare)
    assert Snapshot.from_json(snapshot.to_json()) == snapshot


def test_backup_item_from_restic_verbose_status() -> None:
    # Lines as restic 0.18 prints them under `backup --json --verbose=2`.
    line = {"message_type": "verbose_status", "action": "modified", "item": "/srv/a/b.txt",
            "duration": 0.006, "data_size": 4, "data_size_in_repo": 86, "metadata_size": 0,
            "metadata_size_in_repo": 0, "total_files": 0}
    assert BackupItem.from_json(line) == BackupItem("modified", "/srv/a/b.txt", 4, 86)
    unchanged = {**line, "action": "unchanged", "data_size": 0, "data_size_in_repo": 0}
    assert BackupItem.from_json(unchanged) == BackupItem("unchanged", "/srv/a/b.txt", 0, 0)


def test_backup_item_skips_directories_scan_lines_and_junk() -> None:
    assert BackupItem.from_json({"action": "modified", "item": "/srv/a/"}) is None
    assert BackupItem.from_json({"action": "scan_finished", "item": ""}) is None
    assert BackupItem.from_json({"action": "new", "item": 7}) is None
    assert BackupItem.from_json({"action": "deleted", "item": "/x"}) is None
    odd = BackupItem.from_json({"action": "new", "item": "/x", "data_size": -5,
                                "data_size_in_repo": "many"})
    assert odd == BackupItem("new", "/x", 0, 0)
