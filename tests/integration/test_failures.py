"""Foundation acceptance: each expected failure gives one line naming cause and remedy, its own
exit code, no traceback, and writes nothing to the repository."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from drbackup.errors import ExitCode
from tests.support.servers import MotoServer
from tests.support.workspace import Workspace


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: ExitCode,
                          *fragments: str) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("drbackup: error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def repo_files(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")} if path.exists() else set()


@pytest.fixture
def local_agency(workspace: Workspace, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("alpha\n")
    workspace.add_agency("planning")
    workspace.add_directory_source("planning", "docs", [data])
    workspace.cli("repo", "init", check=True)
    workspace.cli("backup", "--agency", "planning", check=True)
    return workspace.state_dir / "repos" / "planning"


def test_wrong_password(workspace: Workspace, local_agency: Path) -> None:
    before = repo_files(local_agency)
    Path(workspace.agency("planning")["password_file"]).write_text("not the password\n")
    result = workspace.cli("backup", "--agency", "planning")
    assert_one_line_error(result, ExitCode.WRONG_PASSWORD, "wrong password", "password_file")
    assert repo_files(local_agency) == before


def test_missing_restic_binary(workspace: Workspace, local_agency: Path) -> None:
    before = repo_files(local_agency)
    workspace.config["daemon"]["restic"] = "/nonexistent/bin/restic"
    result = workspace.cli("backup", "--agency", "planning")
    assert_one_line_error(result, ExitCode.RESTIC_MISSING, "not found", "make setup")
    assert repo_files(local_agency) == before


def test_restic_too_old(workspace: Workspace, local_agency: Path, tmp_path: Path) -> None:
    fake = tmp_path / "old-restic"
    fake.write_text("#!/bin/sh\necho 'restic 0.14.0 compiled with go1.19.8 on linux/amd64'\n")
    fake.chmod(0o755)
    before = repo_files(local_agency)
    workspace.config["daemon"]["restic"] = str(fake)
    result = workspace.cli("backup", "--agency", "planning")
    assert_one_line_error(result, ExitCode.RESTIC_TOO_OLD, "restic 0.14.0", "0.17.1")
    assert repo_files(local_agency) == before


def test_missing_source_path(workspace: Workspace, local_agency: Path, tmp_path: Path) -> None:
    before = repo_files(local_agency)
    workspace.agency("planning")["sources"][0]["paths"] = [str(tmp_path / "gone")]
    result = workspace.cli("backup", "--agency", "planning")
    assert_one_line_error(result, ExitCode.SOURCE_MISSING, "does not exist",
                          "nothing was backed up")
    assert repo_files(local_agency) == before
    listing = workspace.cli("--json", "snapshots", "--agency", "planning", check=True)
    assert len(json.loads(listing.stdout)) == 1


def test_s3_endpoint_down(workspace: Workspace, own_s3_server: MotoServer, bucket: str,
                          tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("alpha\n")
    workspace.add_s3_store("offsite", own_s3_server, bucket)
    workspace.add_agency("planning", store="offsite")
    workspace.add_directory_source("planning", "docs", [data])
    workspace.cli("repo", "init", check=True)
    own_s3_server.stop()
    result = workspace.cli("backup", "--agency", "planning", timeout=120)
    assert_one_line_error(result, ExitCode.STORE_UNREACHABLE, "unreachable", "offsite")
    own_s3_server.start()  # same port, but moto's state is gone: nothing can have been written


def test_bad_s3_credentials(workspace: Workspace, iam_s3_server: MotoServer, bucket: str,
                            tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    workspace.add_s3_store("offsite", iam_s3_server, bucket, access_key="AKIAWRONGKEY0000",
                           secret_key="wrong-secret-key-123")
    workspace.add_agency("planning", store="offsite")
    workspace.add_directory_source("planning", "docs", [data])
    for verb in (("repo", "init"), ("backup", "--agency", "planning")):
        result = workspace.cli(*verb)
        line = assert_one_line_error(result, ExitCode.STORE_CREDENTIALS, "rejected the credentials",
                                     "credentials_file")
        assert "wrong-secret-key-123" not in line


def test_unknown_agency_and_source(workspace: Workspace, local_agency: Path) -> None:
    result = workspace.cli("backup", "--agency", "nobody")
    assert_one_line_error(result, ExitCode.NOT_FOUND, "no agency 'nobody'", "planning")
    result = workspace.cli("backup", "--agency", "planning", "--source", "nothing")
    assert_one_line_error(result, ExitCode.NOT_FOUND, "no source 'nothing'", "docs")


def test_invalid_config_and_bad_arguments(workspace: Workspace, tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('[[agencies]]\nid = "Bad Id"\n')
    result = subprocess.run(
        ["python", "-m", "drbackup", "--config", str(broken), "backup", "--agency", "x"],
        capture_output=True, text=True, env={**os.environ}, check=False)
    assert_one_line_error(result, ExitCode.CONFIG, str(broken), "agencies[0]")
    result = workspace.cli("restore", "--agency")
    assert result.returncode == ExitCode.USAGE
    assert "Traceback" not in result.stderr


def test_restore_refuses_non_empty_target(workspace: Workspace, local_agency: Path,
                                          tmp_path: Path) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "keep.txt").write_text("mine\n")
    result = workspace.cli("restore", "--agency", "planning", "--source", "docs",
                           "--target", str(target))
    assert_one_line_error(result, ExitCode.TARGET_REFUSED, "not empty", "--overwrite")
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
