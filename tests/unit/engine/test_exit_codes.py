"""restic's exit codes map to typed errors; fake restic scripts stand in for the binary."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from drbackup.engine import (
    BackendUnreachable,
    RepositoryLocked,
    RepositoryMissing,
    RepoTarget,
    Restic,
    ResticError,
    ResticSettings,
    ResticTimeout,
    ResticTooOld,
    WrongPassword,
)
from drbackup.errors import ExitCode


def fake_restic(tmp_path: Path, body: str) -> Restic:
    script = tmp_path / "restic"
    script.write_text("#!/bin/sh\n"
                      'if [ "$1" = version ]; then echo "restic 0.18.0 compiled"; exit 0; fi\n'
                      + body)
    script.chmod(0o755)
    return Restic(ResticSettings(binary=str(script), cache_dir=tmp_path / "cache"))


def target(tmp_path: Path) -> RepoTarget:
    return RepoTarget(str(tmp_path / "repo"), tmp_path / "pw", label="a@local")


@pytest.mark.parametrize(("code", "error", "exit_code"), [
    (10, RepositoryMissing, ExitCode.REPO_MISSING),
    (11, RepositoryLocked, ExitCode.REPO_LOCKED),
    (12, WrongPassword, ExitCode.WRONG_PASSWORD),
    (1, ResticError, ExitCode.RESTIC_FAILED),
])
def test_exit_codes(tmp_path: Path, code: int, error: type[ResticError], exit_code: ExitCode
                    ) -> None:
    restic = fake_restic(tmp_path, f'echo \'{{"message_type":"exit_error","code":{code},'
                                   f'"message":"Fatal: boom"}}\' >&2; exit {code}\n')
    with pytest.raises(error) as info:
        restic.snapshots(target(tmp_path))
    assert info.value.exit_code == exit_code


def test_exit_3_is_a_partial_backup_not_a_failure(tmp_path: Path) -> None:
    restic = fake_restic(tmp_path, (
        "echo '{\"message_type\":\"error\",\"error\":{\"message\":\"permission denied\"},"
        "\"during\":\"archival\",\"item\":\"/srv/locked\"}' >&2\n"
        "echo '{\"message_type\":\"summary\",\"snapshot_id\":\"abc123\",\"files_new\":2}'\n"
        "exit 3\n"))
    result = restic.backup(target(tmp_path), ["/srv"])
    assert result.partial
    assert result.summary.snapshot_id == "abc123"
    assert result.unreadable == ["/srv/locked: permission denied"]


def test_backup_without_summary_is_an_error(tmp_path: Path) -> None:
    restic = fake_restic(tmp_path, "echo 'garbage'\nexit 0\n")
    with pytest.raises(ResticError, match="without a summary"):
        restic.backup(target(tmp_path), ["/srv"])


def test_network_failure_is_recognised(tmp_path: Path) -> None:
    restic = fake_restic(tmp_path, "echo 'Fatal: dial tcp 127.0.0.1:9: connect: connection "
                                   "refused' >&2; exit 1\n")
    with pytest.raises(BackendUnreachable):
        restic.snapshots(target(tmp_path))


def test_timeout_stops_restic(tmp_path: Path) -> None:
    restic = fake_restic(tmp_path, "sleep 30\n")
    restic = Restic(ResticSettings(binary=restic.settings.binary, cache_dir=tmp_path,
                                   timeout=timedelta(seconds=0.5)))
    with pytest.raises(ResticTimeout):
        restic.snapshots(target(tmp_path))


def test_old_version_refused(tmp_path: Path) -> None:
    script = tmp_path / "restic"
    script.write_text("#!/bin/sh\necho 'restic 0.16.4 compiled with go1.21'\n")
    script.chmod(0o755)
    with pytest.raises(ResticTooOld, match=r"0\.16\.4"):
        Restic(ResticSettings(binary=str(script))).require_supported()


def test_secrets_stay_out_of_argv(tmp_path: Path) -> None:
    restic = fake_restic(tmp_path, 'echo "$@" > "$(dirname "$0")/argv"; '
                                   'env > "$(dirname "$0")/env"; echo "[]"\n')
    secret_target = RepoTarget("s3:http://h/b/a", tmp_path / "pw",
                               (("AWS_SECRET_ACCESS_KEY", "sekrit-value"),))
    restic.snapshots(secret_target)
    argv = (tmp_path / "argv").read_text()
    env = (tmp_path / "env").read_text()
    assert "sekrit-value" not in argv
    assert "RESTIC_PASSWORD_FILE=" in env and "RESTIC_CACHE_DIR=" in env
    assert "NOTIFY_SOCKET" not in env
