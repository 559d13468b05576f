"""The one place where fixtures start real servers (moto S3; PostgreSQL and MariaDB live in
tests/support/servers.py and are started from fixtures here too)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from drbackup.engine import Restic, ResticSettings
from tests.support.prometheus import PrometheusServer
from tests.support.servers import IamS3, MariaDBServer, MotoServer, PostgresServer
from tests.support.workspace import Workspace


@pytest.fixture(scope="session")
def restic_binary() -> str:
    """The real restic; its absence is a failure, not a skip: CI must exercise it."""
    found = shutil.which("restic")
    if found is None:
        pytest.fail("restic is not installed: run 'make setup'")
    Restic(ResticSettings(binary=found)).require_supported()
    return found


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto S3 server for the session; tests isolate themselves by bucket name."""
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_s3_server(tmp_path: Path) -> Iterator[MotoServer]:
    """A moto server of this test's own, which the test may stop and start."""
    server = MotoServer(tmp_path / "own-moto")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def iam_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IamS3]:
    """A moto server enforcing IAM (access keys checked, identity policies applied to S3), with
    an admin key; tests create their own users and buckets with unique names."""
    server = IamS3.start(tmp_path_factory.mktemp("moto-iam"))
    yield server
    server.stop()


@pytest.fixture
def recorded_iam_s3(tmp_path: Path) -> Iterator[IamS3]:
    """An IAM-enforcing moto server of the test's own whose recorder keeps every request in
    `server.record` (tests/support/iampolicy.py reads it)."""
    server = IamS3.start(tmp_path / "moto-iam-recorded", record=tmp_path / "s3-requests.jsonl")
    yield server
    server.stop()


@pytest.fixture
def iam_s3_server(tmp_path: Path) -> Iterator[MotoServer]:
    """A moto server enforcing IAM from the first request: only keys created through its IAM
    API are accepted, so unknown credentials are rejected as they would be by AWS."""
    server = MotoServer(tmp_path / "iam-moto", iam=True, no_auth_actions=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def bucket() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def workspace(tmp_path: Path, restic_binary: str) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    ws.config["daemon"]["restic"] = restic_binary
    return ws


_Server = TypeVar("_Server", PostgresServer, MariaDBServer)


def _running(server: _Server) -> Iterator[_Server]:
    """Start a throwaway database server for a fixture and destroy it afterwards, however the
    tests ended."""
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL 15 cluster for the session; tests use their own databases."""
    yield from _running(PostgresServer())


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[MariaDBServer]:
    """One throwaway MariaDB for the session; tests use their own databases."""
    yield from _running(MariaDBServer())


@pytest.fixture(scope="session")
def postgres_server_b() -> Iterator[PostgresServer]:
    """A second PostgreSQL cluster: the "other server" restores go onto (the disaster case).
    Started only by the tests that ask for it."""
    yield from _running(PostgresServer())


@pytest.fixture(scope="session")
def mariadb_server_b() -> Iterator[MariaDBServer]:
    """A second MariaDB: the "other server" restores go onto. Started only when asked for."""
    yield from _running(MariaDBServer())


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[PrometheusServer]:
    """A real Prometheus, not yet started: the test calls .start(targets, rule_files)."""
    if PrometheusServer.binary() is None:
        pytest.fail("prometheus is not installed (Debian package 'prometheus'): run 'make setup'")
    server = PrometheusServer(tmp_path / "prometheus")
    yield server
    server.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`make test` leaves @pytest.mark.slow tests out; `make test-long` (DRBACKUP_LONG=1, -m slow)
    runs them. An explicit -m expression also decides for itself."""
    if os.environ.get("DRBACKUP_LONG") == "1" or config.getoption("markexpr"):
        return
    skip = pytest.mark.skip(reason="slow: runs in 'make test-long' (DRBACKUP_LONG=1)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
