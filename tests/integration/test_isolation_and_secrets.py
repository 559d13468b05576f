"""Foundation acceptance: agencies are isolated from each other, and secrets never appear in
argv, logs, error messages or state."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from drbackup.engine import RepoTarget, Restic, ResticSettings, WrongPassword
from drbackup.errors import ExitCode
from tests.support.procs import ArgvSampler
from tests.support.servers import MotoServer
from tests.support.workspace import Workspace

S3_SECRET = "s3-secret-Zq8vN3kLm0PxR7"


def test_two_agencies_on_one_store_are_isolated(workspace: Workspace, s3_server: MotoServer,
                                                bucket: str, tmp_path: Path,
                                                restic_binary: str) -> None:
    for agency in ("planning", "health"):
        data = tmp_path / agency
        data.mkdir()
        (data / f"{agency}.txt").write_text(f"{agency} records\n")
    workspace.add_s3_store("offsite", s3_server, bucket)
    workspace.add_agency("planning", store="offsite")
    workspace.add_agency("health", store="offsite")
    workspace.add_directory_source("planning", "docs", [tmp_path / "planning"])
    workspace.add_directory_source("health", "docs", [tmp_path / "health"])
    workspace.cli("repo", "init", check=True)
    workspace.cli("backup", "--agency", "planning", check=True)
    workspace.cli("backup", "--agency", "health", check=True)
    workspace.cli("backup", "--agency", "health", check=True)

    planning = json.loads(workspace.cli("--json", "snapshots", "--agency", "planning",
                                        check=True).stdout)
    health = json.loads(workspace.cli("--json", "snapshots", "--agency", "health",
                                      check=True).stdout)
    assert len(planning) == 1 and len(health) == 2
    assert all(s["paths"] == [str(tmp_path / "planning")] for s in planning)
    assert all(s["paths"] == [str(tmp_path / "health")] for s in health)

    # Agency B's password does not open agency A's repository.
    health_pw = Path(workspace.agency("health")["password_file"])
    credentials = tuple(
        (k, v) for k, v in (("AWS_ACCESS_KEY_ID", "k"), ("AWS_SECRET_ACCESS_KEY", "s")))
    planning_repo = RepoTarget(f"{s3_server.url(bucket)}/planning", health_pw, credentials)
    restic = Restic(ResticSettings(binary=restic_binary, cache_dir=tmp_path / "cache"))
    try:
        restic.snapshots(planning_repo)
    except WrongPassword as exc:
        assert exc.exit_code == ExitCode.WRONG_PASSWORD
    else:
        raise AssertionError("agency health's password opened agency planning's repository")


def test_no_secret_in_argv_logs_errors_or_state(workspace: Workspace, s3_server: MotoServer,
                                               bucket: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    # Big enough that restic runs long enough to be sampled many times.
    (data / "big.bin").write_bytes(bytes(range(256)) * 40_000 * 3)
    workspace.add_s3_store("offsite", s3_server, bucket, secret_key=S3_SECRET)
    workspace.add_agency("planning", store="offsite")
    workspace.add_directory_source("planning", "docs", [data])
    password = workspace.passwords["planning"]
    outputs: list[str] = []
    with ArgvSampler() as sampler:
        for args in (("repo", "init"), ("backup", "--agency", "planning"),
                     ("--json", "snapshots"),
                     ("restore", "--agency", "planning", "--source", "docs",
                      "--target", str(tmp_path / "out"))):
            result = workspace.cli("--log-format", "json", "--debug", *args, check=True)
            outputs += [result.stdout, result.stderr]
        # A failure path too: the error message must not carry secrets either.
        Path(workspace.agency("planning")["password_file"]).write_text("wrong\n")
        failed = workspace.cli("backup", "--agency", "planning")
        assert failed.returncode == ExitCode.WRONG_PASSWORD
        outputs += [failed.stdout, failed.stderr]
    restic_runs = sampler.commands_named("restic")
    assert restic_runs, "the sampler never saw restic running"
    for secret in (password, S3_SECRET):
        assert not sampler.containing(secret), "a secret appeared in a process's argv"
        for text in outputs:
            assert secret not in text
        with sqlite3.connect(workspace.state_dir / "state.db") as db:
            dump = "\n".join(db.iterdump())
        assert secret not in dump
