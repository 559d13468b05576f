from __future__ import annotations

from drbackup.engine.jsonlines import error_text, parse_line, parse_lines
from drbackup.engine.models import BackupSummary, Snapshot, parse_restic_time


def test_mixed_output_is_split_into_messages_and_text() -> None:
    parsed = parse_lines([
        "unable to open cache: neither $XDG_CACHE_HOME nor $HOME are defined\n",
        '{"message_type":"status","percent_done":0.5}\n',
        "{truncated\n",
        "[1, 2]\n",
        '{"message_type":"summary","snapshot_id":"abc","data_added":12}\n',
    ])
    assert [m["message_type"] for m in parsed.messages] == ["status", "summary"]
    assert len(parsed.text) == 3
    assert parsed.last_of_type("summary") == {"message_type": "summary", "snapshot_id": "abc",
                                              "data_added": 12}


def test_error_message_is_nested() -> None:
    message = parse_line('{"message_type":"error","error":{"message":"permission denied"},'
                         '"during":"archival","item":"/srv/secret.txt"}')
    assert message is not None
    assert error_text(message) == "/srv/secret.txt: permission denied"
    assert error_text({"message_type": "exit_error", "code": 1, "message": "Fatal: x"}) == \
        "Fatal: x"
    assert error_text({"message_type": "error", "error": {}}) != ""


def test_summary_with_omitted_zero_fields() -> None:
    summary = BackupSummary.from_json({"message_type": "summary", "files_new": 3})
    assert summary.snapshot_id is None
    assert summary.files_new == 3 and summary.data_added == 0


def test_snapshot_times_with_nanoseconds() -> None:
    snap = Snapshot.from_json({
        "id": "f" * 64, "time": "2026-11-28T08:42:49.123456789+01:00", "hostname": "h",
        "paths": ["/srv"], "tags": ["agency=a", "source=s"]})
    assert snap.tag("source") == "s" and snap.tag("missing") is None
    assert snap.time == parse_restic_time("2026-11-28T07:42:49.123456Z")
