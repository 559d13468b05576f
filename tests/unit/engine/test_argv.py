"""Every restic verb's argv, pinned whole (like borgmatic's tests/unit/borg/test_prune.py): first
the pure builders of engine/argv.py, then the command lines `Restic` really starts (binary and
global options included), and that no secret given to the engine ever reaches an argv."""

from __future__ import annotations

import inspect
import io
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO
from unittest import mock

import pytest

from drbackup.engine import argv
from drbackup.engine import invoke as invoke_module
from drbackup.engine.jsonlines import JsonObject, parse_lines
from drbackup.engine.models import ForgetPolicy, RepoTarget
from drbackup.engine.restic import Restic, ResticSettings
from drbackup.engine.runner import ProcessResult

# -- the pure builders --------------------------------------------------------------------------


def test_command_puts_the_global_options_before_the_verb() -> None:
    assert argv.command("restic", ("snapshots",)) == ["restic", "--json", "snapshots"]
    assert argv.command("restic", ("prune",), json_output=False) == ["restic", "prune"]
    assert argv.command("/usr/bin/restic", ("backup", "--", "/srv"), limit_upload_kib=512) == [
        "/usr/bin/restic", "--json", "--limit-upload", "512", "backup", "--", "/srv"]
    assert argv.command("restic", ("copy",), json_output=False, limit_upload_kib=0) == [
        "restic", "copy"]


def test_with_retry_lock_is_a_global_option_after_the_binary() -> None:
    assert argv.with_retry_lock(["restic", "--json", "check"], timedelta(minutes=2)) == [
        "restic", "--retry-lock", "2m", "--json", "check"]
    assert argv.with_retry_lock(["restic", "prune"], timedelta(seconds=90)) == [
        "restic", "--retry-lock", "1m30s", "prune"]


def test_small_verbs() -> None:
    assert argv.version_args() == ("version",)
    assert argv.cat_config_args() == ("cat", "config")
    assert argv.init_args() == ("init",)
    assert argv.init_args(copy_chunker_params=True) == ("init", "--copy-chunker-params")
    assert argv.unlock_args() == ("unlock",)
    assert argv.prune_args() == ("prune",)
    assert argv.ls_args("abc123") == ("ls", "abc123")
    assert argv.ls_args("latest", ["/srv/a", "/srv/b"]) == ("ls", "latest", "/srv/a", "/srv/b")
    assert argv.dump_args("abc123", "/stdin/db.sql") == ("dump", "abc123", "/stdin/db.sql")
    assert argv.stats_args() == ("stats", "--mode", "restore-size")
    assert argv.stats_args(mode="raw-data", snapshot_ids=["a1", "b2"]) == (
        "stats", "--mode", "raw-data", "a1", "b2")


def test_copy_names_the_source_in_the_environment_not_in_argv() -> None:
    assert argv.copy_args() == ("copy",)
    assert argv.copy_args(["a1", "b2"]) == ("copy", "a1", "b2")


def test_backup_of_paths() -> None:
    assert argv.backup_args(["/srv/data"]) == ("backup", "--", "/srv/data")
    assert argv.backup_args(["/srv/a", "-odd"], tags=["agency=planning", "source=files"],
                            host="planning", excludes=["*.tmp", "/srv/a/cache"],
                            one_file_system=True,
                            time=datetime(2026, 12, 6, 19, 35, 7, tzinfo=UTC),
                            skip_if_unchanged=True) == (
        "backup", "--tag", "agency=planning", "--tag", "source=files", "--host", "planning",
        "--exclude", "*.tmp", "--exclude", "/srv/a/cache", "--one-file-system",
        "--time", "2026-12-06 19:35:07", "--skip-if-unchanged", "--", "/srv/a", "-odd")


def test_backup_tags_go_as_given_one_per_option() -> None:
    # No escaping: each tag is its own --tag word, exactly as the caller gave it.
    assert argv.backup_args(["/x"], tags=["a,b", "c"]) == (
        "backup", "--tag", "a,b", "--tag", "c", "--", "/x")


def test_backup_from_a_command_uses_the_separator_and_no_paths() -> None:
    assert argv.backup_args(["/ignored"], stdin_command=["pg_dump", "-Fc", "--", "db"],
                            stdin_filename="db.dump", tags=["source=db"]) == (
        "backup", "--tag", "source=db", "--stdin-filename", "db.dump", "--stdin-from-command",
        "--", "pg_dump", "-Fc", "--", "db")
    assert argv.backup_args([], stdin_command=["mysqldump"]) == (
        "backup", "--stdin-filename", "stdin", "--stdin-from-command", "--", "mysqldump")


def test_snapshots_tags_are_anded_in_one_option() -> None:
    assert argv.snapshots_args() == ("snapshots",)
    assert argv.snapshots_args(tags=["agency=a", "source=s"], host="h1") == (
        "snapshots", "--tag", "agency=a,source=s", "--host", "h1")


def test_find() -> None:
    assert argv.find_args(["*.pdf"]) == ("find", "--", "*.pdf")
    assert argv.find_args(["-odd", "*.PDF"], tags=["agency=a", "source=s"],
                          snapshot_ids=["a1", "b2"], ignore_case=True) == (
        "find", "--tag", "agency=a,source=s", "--snapshot", "a1", "--snapshot", "b2",
        "--ignore-case", "--", "-odd", "*.PDF")


def test_restore() -> None:
    assert argv.restore_args("abc123", Path("/restore")) == (
        "restore", "abc123", "--target", "/restore")
    assert argv.restore_args("latest", Path("/tmp/t"), includes=["/srv/a", "/srv/b"],
                             excludes=["*.log"], dry_run=True, verify=True,
                             overwrite="if-changed", limit_download_kib=2048) == (
        "--limit-download", "2048", "restore", "latest", "--target", "/tmp/t",
        "--include", "/srv/a", "--include", "/srv/b", "--exclude", "*.log",
        "--dry-run", "-v", "--verify", "--overwrite", "if-changed")


def test_check() -> None:
    assert argv.check_args() == ("check",)
    assert argv.check_args(read_data=True) == ("check", "--read-data")
    assert argv.check_args(read_data_subset="1/10") == ("check", "--read-data-subset=1/10")
    assert argv.check_args(read_data_subset="5%") == ("check", "--read-data-subset=5%")
    assert argv.check_args(read_data=True, read_data_subset="1/10") == ("check", "--read-data")


def test_forget_every_keep_option_in_order() -> None:
    policy = ForgetPolicy(keep_within=timedelta(days=3, hours=4), keep_last=2, keep_hourly=24,
                          keep_daily=7, keep_weekly=5, keep_monthly=12, keep_yearly=3)
    assert argv.forget_args(policy) == (
        "forget", "--group-by", "host,tags", "--keep-within", "3d4h", "--keep-last", "2",
        "--keep-hourly", "24", "--keep-daily", "7", "--keep-weekly", "5",
        "--keep-monthly", "12", "--keep-yearly", "3")


@pytest.mark.parametrize(("policy", "keep"), [
    (ForgetPolicy(), ()),
    (ForgetPolicy(keep_daily=7), ("--keep-daily", "7")),
    (ForgetPolicy(keep_last=0), ("--keep-last", "0")),
    (ForgetPolicy(keep_daily=7, keep_monthly=6), ("--keep-daily", "7", "--keep-monthly", "6")),
    (ForgetPolicy(keep_within=timedelta(days=30), keep_yearly=1),
     ("--keep-within", "30d", "--keep-yearly", "1")),
    (ForgetPolicy(keep_within=timedelta(hours=5)), ("--keep-within", "5h")),
    (ForgetPolicy(keep_within=timedelta(minutes=10)), ("--keep-within", "1h")),
])
def test_forget_keep_combinations(policy: ForgetPolicy, keep: tuple[str, ...]) -> None:
    assert argv.forget_args(policy) == ("forget", "--group-by", "host,tags", *keep)


def test_forget_tags_dry_run_group_by_and_ids() -> None:
    assert argv.forget_args(ForgetPolicy(keep_last=3), tags=["agency=a", "source=s"],
                            group_by="tags", dry_run=True) == (
        "forget", "--group-by", "tags", "--dry-run", "--tag", "agency=a,source=s",
        "--keep-last", "3")
    assert argv.forget_args(ForgetPolicy(), snapshot_ids=["a1", "b2"]) == (
        "forget", "--group-by", "host,tags", "a1", "b2")


def test_builders_take_no_secret() -> None:
    """The builders cannot leak what they are never given: no parameter is a password, key,
    token, secret or repository target (which carries backend credentials)."""
    for name, builder in inspect.getmembers(argv, inspect.isfunction):
        if builder.__module__ != argv.__name__:
            continue
        for parameter in inspect.signature(builder).parameters:
            lowered = parameter.lower()
            assert not any(word in lowered for word in (
                "password", "secret", "key", "token", "credential", "target_repo")), (
                name, parameter)
        assert "RepoTarget" not in str(inspect.signature(builder)), name


# -- the command lines Restic starts -------------------------------------------------------------

SECRET = "s3cr3t-backend-value"
TOKEN = "t0ken-session-value"
TARGET = RepoTarget("s3:http://127.0.0.1:9/bucket/agency", Path("/etc/drbackup/agency.pw"),
                    backend_env=(("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEYID"),
                                 ("AWS_SECRET_ACCESS_KEY", SECRET),
                                 ("AWS_SESSION_TOKEN", TOKEN)),
                    label="agency@offsite", limit_upload_kib=256)
SOURCE = RepoTarget("/srv/primary", Path("/etc/drbackup/primary.pw"), label="agency@local")
# A repository on a medium mounted read-only (#19): restic must not try to write a lock.
MEDIUM = RepoTarget("/media/usb/agencies/agency/repo", Path("/etc/drbackup/agency.pw"),
                    label="agency@medium", no_lock=True)
BIN = "/opt/restic"
Call = tuple[list[str], dict[str, str]]


def _recording(calls: list[Call]) -> Callable[..., ProcessResult]:
    def run(argv: Sequence[str], env: Mapping[str, str], *, timeout: float | None,
            on_message: Callable[[JsonObject], None] | None = None,
            stdout_sink: IO[bytes] | None = None, cwd: str | None = None) -> ProcessResult:
        calls.append((list(argv), dict(env)))
        out = ['{"message_type":"summary","snapshot_id":"' + "ab" * 32 + '"}']
        if "snapshots" in argv or "forget" in argv:
            out = ["[]"]
        if "stats" in argv:
            out = ['{"total_size":1}']
        if argv[-2:] == ["cat", "config"]:
            out = ["{", '  "id": "x"', "}"]  # pretty-printed, as restic prints it
        if "version" in argv:
            out = ["restic 0.18.0 compiled"]
        return ProcessResult(list(argv), 0, parse_lines(out), parse_lines([]), 0.01, False, False)

    return run


def _run(call: Callable[[Restic], object]) -> list[Call]:
    calls: list[Call] = []
    with mock.patch.object(invoke_module, "run_process", _recording(calls)):
        call(Restic(ResticSettings(binary=BIN)))
    return calls


G = [BIN, "--json", "--limit-upload", "256"]  # TARGET's global options
PLAIN = [BIN, "--limit-upload", "256"]  # the same without --json
VERBS: list[tuple[str, Callable[[Restic], object], list[str]]] = [
    ("version", lambda r: r.version(), [BIN, "version"]),
    ("repository_exists", lambda r: r.repository_exists(TARGET), [*PLAIN, "cat", "config"]),
    ("repository_config", lambda r: r.repository_config(TARGET), [*G, "cat", "config"]),
    ("init", lambda r: r.init(TARGET), [*G, "init"]),
    ("init-copy", lambda r: r.init(TARGET, copy_chunker_params_from=SOURCE),
     [*G, "init", "--copy-chunker-params"]),
    ("backup", lambda r: r.backup(TARGET, ["/srv"], tags=["agency=a"], host="h",
                                  excludes=["*.tmp"], one_file_system=True),
     [*G, "backup", "--tag", "agency=a", "--host", "h", "--exclude", "*.tmp",
      "--one-file-system", "--", "/srv"]),
    ("backup-stdin", lambda r: r.backup(TARGET, [], stdin_command=["pg_dump", "db"],
                                        stdin_filename="db.dump"),
     [*G, "backup", "--stdin-filename", "db.dump", "--stdin-from-command", "--",
      "pg_dump", "db"]),
    ("snapshots", lambda r: r.snapshots(TARGET, tags=["agency=a", "source=s"]),
     [*G, "snapshots", "--tag", "agency=a,source=s"]),
    ("ls", lambda r: r.ls(TARGET, "latest", ["/srv"]), [*G, "ls", "latest", "/srv"]),
    ("find", lambda r: r.find(TARGET, ["*.pdf"], ignore_case=True),
     [*G, "find", "--ignore-case", "--", "*.pdf"]),
    ("stats", lambda r: r.stats(TARGET), [*G, "stats", "--mode", "restore-size"]),
    ("dump", lambda r: r.dump(TARGET, "latest", "/db.dump", io.BytesIO()),
     [*PLAIN, "dump", "latest", "/db.dump"]),
    ("restore", lambda r: r.restore(TARGET, "latest", Path("/t"), verify=True,
                                    limit_download_kib=100),
     [*G, "--limit-download", "100", "restore", "latest", "--target", "/t", "--verify"]),
    ("check", lambda r: r.check(TARGET, read_data_subset="2/7"),
     [*G, "check", "--read-data-subset=2/7"]),
    ("forget", lambda r: r.forget(TARGET, ForgetPolicy(keep_daily=7), tags=["agency=a"]),
     [*G, "forget", "--group-by", "host,tags", "--tag", "agency=a", "--keep-daily", "7"]),
    ("prune", lambda r: r.prune(TARGET), [*PLAIN, "prune"]),
    ("copy", lambda r: r.copy(SOURCE, TARGET, ["a1"]), [*PLAIN, "copy", "a1"]),
    ("unlock", lambda r: r.unlock(TARGET), [*PLAIN, "unlock"]),
]


@pytest.mark.parametrize(("name", "call", "expected"), VERBS, ids=[v[0] for v in VERBS])
def test_each_verb_starts_exactly_this_command(name: str, call: Callable[[Restic], object],
                                               expected: list[str]) -> None:
    calls = _run(call)
    assert [command for command, _ in calls] == [expected]


@pytest.mark.parametrize(("name", "call", "expected"), VERBS, ids=[v[0] for v in VERBS])
def test_no_secret_reaches_argv(name: str, call: Callable[[Restic], object],
                                expected: list[str]) -> None:
    for command, env in _run(call):
        words = " ".join(command)
        for secret in (SECRET, TOKEN, "AKIAEXAMPLEKEYID", str(TARGET.password_file),
                       str(SOURCE.password_file), "RESTIC_PASSWORD"):
            assert secret not in words, (name, secret)
        if name != "version":
            assert env["RESTIC_PASSWORD_FILE"] == str(TARGET.password_file)
            assert env["AWS_SECRET_ACCESS_KEY"] == SECRET


def test_a_read_only_repository_is_read_without_a_lock() -> None:
    """#19: a medium mounted read-only; restic's --no-lock goes with every reading verb."""
    for call, words in ((lambda r: r.ls(MEDIUM, "latest"), ["ls", "latest"]),
                        (lambda r: r.snapshots(MEDIUM), ["snapshots"])):
        [(command, env)] = _run(call)
        assert command == [BIN, "--json", "--no-lock", *words]
        assert env["RESTIC_REPOSITORY"] == MEDIUM.url
    [(command, _)] = _run(lambda r: r.ls(TARGET, "latest"))
    assert "--no-lock" not in command


def test_copy_and_init_name_the_source_in_the_environment() -> None:
    for call in (lambda r: r.copy(SOURCE, TARGET), lambda r: r.init(
            TARGET, copy_chunker_params_from=SOURCE)):
        [(command, env)] = _run(call)
        assert "--from-repo" not in command and "--from-password-file" not in command
        assert SOURCE.url not in command
        assert env["RESTIC_FROM_REPOSITORY"] == SOURCE.url
        assert env["RESTIC_FROM_PASSWORD_FILE"] == str(SOURCE.password_file)
        assert env["RESTIC_REPOSITORY"] == TARGET.url
