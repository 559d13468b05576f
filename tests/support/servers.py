"""Real servers for tests, started as throwaway subprocesses on loopback: the moto S3 server
(plain or IAM-enforcing). PostgreSQL and MariaDB helpers live beside this class."""

from __future__ import annotations

import json
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
from typing import TYPE_CHECKING

import boto3

from drbackup.store import S3Credentials

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

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


IAM_BOOTSTRAP_ACTIONS = 3  # create_user, create_access_key, put_user_policy (the admin)


@dataclass
class IamS3:
    """An IAM-enforcing moto server plus an admin key; creates users with given policies."""

    server: MotoServer
    admin: S3Credentials

    @classmethod
    def start(cls, workdir: Path) -> IamS3:
        server = MotoServer(workdir, iam=True, no_auth_actions=IAM_BOOTSTRAP_ACTIONS)
        server.start()
        iam = boto3.client("iam", endpoint_url=server.endpoint, region_name="us-east-1",
                           aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
        iam.create_user(UserName="admin")
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        iam.put_user_policy(UserName="admin", PolicyName="everything", PolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        return cls(server, S3Credentials(key["AccessKeyId"], key["SecretAccessKey"]))

    def iam(self) -> IAMClient:
        return boto3.client("iam", endpoint_url=self.server.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.admin.access_key_id,
                            aws_secret_access_key=self.admin.secret_access_key)

    def user(self, name: str, policy: dict[str, object]) -> S3Credentials:
        """A new IAM user with this inline policy; returns its access key."""
        iam = self.iam()
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy",
                            PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return S3Credentials(key["AccessKeyId"], key["SecretAccessKey"])

    def client(self, credentials: S3Credentials | None = None):  # type: ignore[no-untyped-def]
        return self.server.client(credentials or self.admin)

    def stop(self) -> None:
        self.server.stop()
