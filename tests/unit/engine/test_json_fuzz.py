"""Fuzzing restic's output handling: random, truncated and garbage lines, odd JSON types and any
exit code never raise anything but a ResticError from the engine (never TypeError, KeyError,
ValueError, AttributeError...), and never produce a snapshot id that restic did not print."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import IO, Any
from unittest import mock

from hypothesis import strategies as st

from drbackup.engine import invoke as invoke_module
from drbackup.engine.errors import ResticError
from drbackup.engine.jsonlines import JsonObject, error_text, parse_line, parse_lines
from drbackup.engine.models import (
    BackupSummary,
    ForgetPolicy,
    LsNode,
    Progress,
    RepoTarget,
    RestoreSummary,
    Snapshot,
)
from drbackup.engine.restic import Restic, ResticSettings
from drbackup.engine.runner import ProcessResult
from tests.support.fuzz import fuzz_pair, json_values

RESTIC_KEYS = [
    "message_type", "struct_type", "snapshot_id", "files_new", "files_changed", "data_added",
    "total_files_processed", "total_bytes_processed", "total_duration", "percent_done",
    "seconds_elapsed", "total_files", "files_done", "bytes_done", "error_count", "id", "time",
    "hostname", "paths", "tags", "tree", "parent", "original", "program_version", "summary",
    "backup_start", "backup_end", "keep", "remove", "reasons", "matches", "snapshot",
    "num_errors", "broken_packs", "suggest_repair_index", "suggest_prune", "error", "message",
    "item", "during", "code", "total_size", "total_file_count", "snapshots_count", "path",
    "type", "size", "mode", "mtime", "files_restored", "bytes_restored", "files_skipped",
    "host",
]
MESSAGE_TYPES = ["summary", "status", "error", "exit_error", "node", "snapshot",
                 "verbose_status", "initialized"]
TIMES = ["2026-11-20T10:00:00.123456789+01:00", "2026-11-20T10:00:00Z", "yesterday", "",
         "2026-13-45T99:99:99Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999-23:59"]
ODD_NUMBERS = [float("inf"), float("-inf"), float("nan"), 1e308, -0.0, 2**70, -(2**70), 10**400]
SNAPSHOT_IDS = ["", "0" * 64, "deadbeef", "f00d" * 16, "not-an-id", "DEADBEEF" * 8]

restic_keys = st.sampled_from(RESTIC_KEYS) | st.text(max_size=8)
restic_leaf: st.SearchStrategy[Any] = (
    json_values(restic_keys) | st.sampled_from(TIMES) | st.sampled_from(SNAPSHOT_IDS)
    | st.sampled_from(MESSAGE_TYPES) | st.sampled_from(ODD_NUMBERS))


def restic_object(*, types: Sequence[str] = MESSAGE_TYPES) -> st.SearchStrategy[JsonObject]:
    """A JSON object shaped like restic's messages, with any values."""
    return st.builds(
        lambda message_type, body: {"message_type": message_type, **body} if message_type
        else body,
        st.sampled_from([*types, None]),
        st.dictionaries(restic_keys, restic_leaf, max_size=8))


def snapshot_like() -> st.SearchStrategy[Any]:
    good = st.fixed_dictionaries(
        {"id": st.sampled_from(SNAPSHOT_IDS), "time": st.sampled_from(TIMES)},
        optional={"paths": restic_leaf, "tags": restic_leaf, "summary": restic_leaf,
                  "parent": restic_leaf, "hostname": restic_leaf})
    return good | restic_leaf


def _line(value: Any, cut: int | None) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text[:cut] if cut is not None else text


output_line: st.SearchStrategy[str] = st.builds(
    _line,
    restic_object() | st.lists(snapshot_like(), max_size=3) | st.text(max_size=60)
    | st.sampled_from(["restic 0.18.0 compiled with go1.24 on linux/amd64", "Fatal: boom",
                       "{", "[", "null", "[]", "{}", '{"message_type":"summary"',
                       "panic: runtime error", "\x00\xff", "unable to open cache: no $HOME"]),
    st.none() | st.integers(min_value=0, max_value=80))
output_lines = st.lists(output_line, max_size=8)
exit_codes = st.sampled_from([0, 0, 0, 1, 3, 10, 11, 12, 130, 143, -9, -15, 2, 255])

TARGET = RepoTarget("s3:http://127.0.0.1:9/bucket/agency", Path("/nonexistent/password"),
                    backend_env=(("AWS_SECRET_ACCESS_KEY", "fuzz-secret-value"),),
                    label="agency@fuzz")
OTHER = RepoTarget("/srv/other", Path("/nonexistent/password"), label="agency@other")


def _fake_runner(stdout: list[str], stderr: list[str], returncode: int, timed_out: bool,
                 terminated: bool) -> Callable[..., ProcessResult]:
    """run_process as the engine sees it, fed with the given lines (parsed by the real code)."""

    def run(argv: Sequence[str], env: Mapping[str, str], *, timeout: float | None,
            on_message: Callable[[JsonObject], None] | None = None,
            stdout_sink: IO[bytes] | None = None, cwd: str | None = None) -> ProcessResult:
        kept = []
        for line in stdout:
            if stdout_sink is not None:
                stdout_sink.write(line.encode("utf-8", errors="replace"))
                continue
            message = parse_line(line)
            if message is not None and on_message is not None:
                on_message(message)
            if message is None or message.get("message_type") != "status":
                kept.append(line)
        return ProcessResult(list(argv), returncode, parse_lines(kept), parse_lines(stderr),
                             0.01, timed_out, terminated)

    return run


def _all_calls(restic: Restic) -> list[tuple[str, Callable[[], object]]]:
    progress: list[Progress] = []
    return [
        ("version", restic.version),
        ("require_supported", restic.require_supported),
        ("repository_exists", lambda: restic.repository_exists(TARGET)),
        ("init", lambda: restic.init(TARGET, copy_chunker_params_from=OTHER)),
        ("backup", lambda: restic.backup(TARGET, ["/srv/data"], tags=["agency=a"],
                                         on_progress=progress.append)),
        ("backup-skip", lambda: restic.backup(TARGET, ["/srv/data"], skip_if_unchanged=True)),
        ("snapshots", lambda: restic.snapshots(TARGET, tags=["agency=a"])),
        ("ls", lambda: restic.ls(TARGET, "latest")),
        ("stats", lambda: restic.stats(TARGET)),
        ("dump", lambda: restic.dump(TARGET, "latest", "/x", io.BytesIO())),
        ("restore", lambda: restic.restore(TARGET, "latest", Path("/tmp/none"),
                                           on_progress=progress.append)),
        ("restore-dry", lambda: restic.restore(TARGET, "latest", Path("/tmp/none"),
                                               dry_run=True)),
        ("check", lambda: restic.check(TARGET, read_data_subset="1/10")),
        ("forget", lambda: restic.forget(TARGET, ForgetPolicy(keep_last=3,
                                                              keep_within=timedelta(days=2)))),
        ("forget-ids", lambda: restic.forget(TARGET, ForgetPolicy(), snapshot_ids=["abc"])),
        ("prune", lambda: restic.prune(TARGET)),
        ("copy", lambda: restic.copy(OTHER, TARGET)),
        ("unlock", lambda: restic.unlock(TARGET)),
    ]


def _every_engine_call(stdout: list[str], stderr: list[str], returncode: int, timed_out: bool,
                       terminated: bool) -> None:
    runner = _fake_runner(stdout, stderr, returncode, timed_out, terminated)
    printed = "\n".join(stdout)
    with mock.patch.object(invoke_module, "run_process", runner):
        restic = Restic(ResticSettings(binary="/fake/restic"))
        for name, call in _all_calls(restic):
            try:
                result = call()
            except ResticError as exc:
                assert "\n" not in exc.one_line(), name
                assert "fuzz-secret-value" not in exc.one_line(), name
                continue
            if name.startswith("backup"):
                snapshot_id = result.summary.snapshot_id  # type: ignore[attr-defined]
                assert snapshot_id is None or (
                    snapshot_id in printed and returncode in (0, 3)), (name, snapshot_id)
                if name == "backup":
                    assert snapshot_id, "a backup without --skip-if-unchanged needs a snapshot"


test_engine_output_handling, test_engine_output_handling_long = fuzz_pair(
    _every_engine_call, output_lines, output_lines, exit_codes, st.booleans(), st.booleans(),
    examples=150)


def _parse_any_line(raw: str | bytes) -> None:
    message = parse_line(raw)
    assert message is None or isinstance(message, dict)
    if message is not None:
        assert isinstance(error_text(message), str)


test_parse_line, test_parse_line_long = fuzz_pair(
    _parse_any_line, st.text(max_size=120) | st.binary(max_size=120) | output_line,
    examples=300)


def _parse_many(lines: list[str]) -> None:
    parsed = parse_lines(lines)
    assert len(parsed.messages) + len(parsed.text) <= len(lines)
    for message_type in MESSAGE_TYPES:
        parsed.of_type(message_type)
        parsed.last_of_type(message_type)


test_parse_lines, test_parse_lines_long = fuzz_pair(_parse_many, output_lines, examples=200)


def _models_from_any_object(message: JsonObject) -> None:
    Progress.from_json(message)
    RestoreSummary.from_json(message, [])
    LsNode.from_json(message)
    error_text(message)
    for model in (BackupSummary, Snapshot):
        try:
            model.from_json(message)
        except ResticError as exc:
            assert "\n" not in exc.one_line()


test_models_from_json, test_models_from_json_long = fuzz_pair(
    _models_from_any_object, restic_object() | st.builds(dict, snapshot_like().filter(
        lambda v: isinstance(v, dict))), examples=300)


def test_snapshot_from_good_json_round_trips() -> None:
    snapshot = Snapshot.from_json({
        "id": "f00d" * 16, "time": TIMES[0], "paths": "/srv/one", "tags": ["agency=a", None],
        "summary": {"backup_start": "garbage", "backup_end": TIMES[1], "data_added": "12"}})
    assert snapshot.paths == ["/srv/one"]
    assert snapshot.tags == ["agency=a"]
    assert snapshot.summary is not None and snapshot.summary.backup_start is None
    assert snapshot.summary.data_added == 0
    assert snapshot.time.utcoffset() == timedelta(hours=1)


def test_backup_summary_refuses_made_up_snapshot_ids() -> None:
    for bad in (True, 12, {"id": "x"}, ["f00d" * 16], "not-an-id"):
        try:
            BackupSummary.from_json({"message_type": "summary", "snapshot_id": bad})
        except ResticError:
            continue
        raise AssertionError(f"snapshot_id {bad!r} was accepted")
    assert BackupSummary.from_json({"snapshot_id": "f00d" * 16}).snapshot_id == "f00d" * 16
    assert BackupSummary.from_json({}).snapshot_id is None


def test_json_infinity_and_nan_are_not_counts() -> None:
    message = parse_line('{"message_type":"summary","files_new":Infinity,"data_added":NaN,'
                         '"total_duration":-Infinity}')
    assert message is not None
    summary = BackupSummary.from_json(message)
    assert summary.files_new == 0 and summary.data_added == 0


def test_real_process_with_garbage_output(tmp_path: Path) -> None:
    """The runner and engine together, with a fake restic binary that prints invalid UTF-8,
    truncated JSON, a line without newline and a 1 MiB line, then exits with odd codes."""
    stdout_file = tmp_path / "stdout"
    stdout_file.write_bytes(
        b'\xff\xfe garbage\n{"message_type":"status","percent_done":Infinity}\n'
        b'{"message_type":"summary","snapshot_id":"f00d"\n' + b"x" * (1 << 20) + b"\n"
        b'[{"id":7,"time":null}]\n{"message_type":"summary"')
    (tmp_path / "stderr").write_bytes(b'{"message_type":"exit_error","code":1,"message":\n'
                                      b"Fatal: \xc3\x28 broken\n")
    fake = tmp_path / "restic"
    for code in (0, 1, 3, 10, 11, 12, 77):
        fake.write_text(f"#!/bin/sh\ncat {stdout_file}\ncat {tmp_path / 'stderr'} >&2\n"
                        f"exit {code}\n")
        fake.chmod(0o755)
        restic = Restic(ResticSettings(binary=str(fake), cache_dir=tmp_path / "cache"))
        for name, call in _all_calls(restic):
            try:
                call()
            except ResticError as exc:
                assert "\n" not in exc.one_line(), (code, name)
                continue
            if name == "repository_exists":
                assert code in (0, 10), code  # 10: "no repository" is an answer, not an error
                continue
            assert name in {"init", "prune", "copy", "unlock", "dump", "forget-ids",
                            "restore", "restore-dry", "ls", "stats", "check",
                            "forget"} and code == 0, (code, name)
