"""Typed engine values: snapshot records round-trip through the state cache; backup items parse."""

from __future__ import annotations

import json

from drbackup.engine.models import Snapshot

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


