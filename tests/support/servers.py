"""Real servers for tests, started as throwaway subprocesses on loopback: the moto S3 server
(plain or IAM-enforcing). PostgreSQL and MariaDB helpers live beside this class."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import boto3

from drbackup.store import S3Credentials

TEST_ACCESS_KEY = "drbackup-test-key"
TEST_SECRET_KEY = "drbackup-test-secret-9f3c2a71"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@dataclass
class MotoServer:
    """moto's S3 server as a subprocess. `iam=True` starts it enforcing IAM (the first
    `no_auth_actions` requests are unauthenticated so a test can create users and policies)."""

    workdir: Path
    iam: bool = False
    no_auth_actions: int = 0
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, bucket: str) -> str:
        return f"s3:{self.endpoint}/{bucket}"

    def start(self) -> None:
        spool = self.workdir / "moto-spool"
        spool.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "TMPDIR": str(spool)}
        if self.iam:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(self.no_auth_actions)
        moto = shutil.which("moto_server", path=str(Path(sys.executable).parent))
        argv = [moto] if moto else [sys.executable, "-m", "moto.server"]
        log = (self.workdir / f"moto-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            [*argv, "-H", "127.0.0.1", "-p", str(self.port)], env=env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1)  # noqa: S310
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                if self.process.poll() is not None:
                    raise RuntimeError(f"moto_server exited; see {log.name}") from None
                time.sleep(0.1)
        raise TimeoutError("moto_server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def reset(self) -> None:
        request = urllib.request.Request(  # noqa: S310 - our own loopback server
            f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10)  # noqa: S310

    def client(self, credentials: S3Credentials | None = None):  # type: ignore[no-untyped-def]
        creds = credentials or S3Credentials(TEST_ACCESS_KEY, TEST_SECRET_KEY)
        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key)
