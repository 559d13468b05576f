"""The snapshot list cached in the state database is used only while the repository holds
exactly the cached snapshots: two hosts share one repository (a local directory, and a bucket
on the real S3 server), one backs up and forgets behind the other's back, and the other's
restores always follow the repository. With a valid cache a restore opens the repository once
(`restic restore` alone), which is the point of the cache; it never replaces the password."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from drbackup.config import load_config
from drbackup.engine.models import ForgetPolicy
from drbackup.errors import ExitCode
from drbackup.jobs.runtime import Runtime
from tests.support.servers import TEST_ACCESS_KEY, TEST_SECRET_KEY, MotoServer
from tests.support.workspace import Workspace


def _counting_restic(folder: Path, real: str, log: Path) -> str:
    """A restic that notes each command it is asked to run, then becomes the real one."""
    wrapper = folder / "restic"
    wrapper.write_text(f'#!/bin/sh\nfor a in "$@"; do case "$a" in -*) ;; *) '
                       f'echo "$a" >> "{log}"; break;; esac; done\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def _host(root: Path, restic: str, store: dict[str, str], credentials: Path | None,
          password: str, data: Path) -> Workspace:
    ws = Workspace(root)
    ws.config["daemon"]["restic"] = restic
    ws.config["stores"]["shared"] = dict(store)
    if credentials is not None:
        ws.config["stores"]["shared"]["credentials_file"] = str(credentials)
    ws.add_agency("planning", store="shared", password=password)
    ws.add_directory_source("planning", "docs", [data])
    return ws


def _restored(ws: Workspace, target: Path, data: Path) -> str:
    ws.cli("restore", "--agency", "planning", "--source", "docs", "--no-progress",
           "--target", str(target), check=True)
    return (target / data.relative_to("/") / "version.txt").read_text()


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_cached_snapshot_list_follows_the_repository(kind: str, tmp_path: Path,
                                                     restic_binary: str, s3_server: MotoServer,
                                                     bucket: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    opened = tmp_path / "restic-commands.log"
    restic = _counting_restic(tmp_path, restic_binary, opened)
    credentials: Path | None = None
    if kind == "local":
        store = {"path": str(tmp_path / "repos")}
    else:
        store = {"url": s3_server.url(bucket)}
        credentials = tmp_path / "s3.credentials"
        credentials.write_text(f"[default]\naws_access_key_id = {TEST_ACCESS_KEY}\n"
                               f"aws_secret_access_key = {TEST_SECRET_KEY}\n")
        credentials.chmod(0o600)
    here = _host(tmp_path / "here", restic, store, credentials, "pw-shared-4d1c", data)
    there = _host(tmp_path / "there", restic, store, credentials, "pw-shared-4d1c", data)

    here.cli("repo", "init", check=True)
    (data / "version.txt").write_text("one\n")
    here.cli("backup", "--agency", "planning", "--no-progress", check=True)
    assert _restored(here, tmp_path / "t1", data) == "one\n"

    opened.write_text("")
    assert _restored(here, tmp_path / "t2", data) == "one\n"
    assert opened.read_text().split() == ["restore"], \
        "a restore with a valid cached snapshot list must open the repository only once"

    # The other host backs up: the cache here no longer matches the repository.
    (data / "version.txt").write_text("two\n")
    there.cli("backup", "--agency", "planning", "--no-progress", check=True)
    assert _restored(here, tmp_path / "t3", data) == "two\n"

    # The other host forgets that newest snapshot: here must not offer it again.
    listed = json.loads(there.cli("--json", "snapshots", "--agency", "planning",
                                  check=True).stdout)
    newest = max(listed, key=lambda snap: snap["time"])["id"]
    rt = Runtime.create(load_config(there.write()))
    try:
        rt.restic.forget(rt.target(rt.config.agency("planning")), ForgetPolicy(),
                         snapshot_ids=[newest])
    finally:
        rt.close()
    (data / "version.txt").write_text("one\n")  # the data the remaining snapshot holds
    assert _restored(here, tmp_path / "t4", data) == "one\n"
    ids = {snap["id"] for snap in json.loads(here.cli("--json", "snapshots", "--agency",
                                                      "planning", check=True).stdout)}
    assert newest not in ids and len(ids) == 1

    # A damaged cache is no cache.
    with sqlite3.connect(here.state_dir / "state.db") as db:
        db.execute("UPDATE kv SET value = '[{\"id\": 1}' WHERE key LIKE 'snapshot-catalogue:%'")
    assert _restored(here, tmp_path / "t5", data) == "one\n"

    # The cache never stands in for the password: `snapshots` asks restic every time, and a
    # restore's own restic run refuses a wrong password.
    here.secret_file("planning.password", "not-the-password\n")
    assert here.cli("snapshots", "--agency", "planning").returncode == ExitCode.WRONG_PASSWORD
    refused = here.cli("restore", "--agency", "planning", "--source", "docs", "--no-progress",
                       "--target", str(tmp_path / "t6"))
    assert refused.returncode == ExitCode.WRONG_PASSWORD, refused.stderr
