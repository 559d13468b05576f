"""Real servers for tests, started as throwaway subprocesses on loopback: the moto S3 server
(plain or IAM-enforcing). PostgreSQL and MariaDB helpers live beside this class."""

from __future__ import annotations

import getpass
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import boto3

import drbackup.children as children
from drbackup.store import S3Credentials

if TYPE_CHECKING:
    from collections.abc import Iterable

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
    record: Path | None = None  # moto's recorder writes every request here (one JSON a line)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, bucket: str) -> str:
        return f"s3:{self.endpoint}/{bucket}"

    def server_argv(self) -> list[str]:
        """The command that serves S3 on self.port (a subclass may serve it otherwise)."""
        moto = shutil.which("moto_server", path=str(Path(sys.executable).parent))
        argv = [moto] if moto else [sys.executable, "-m", "moto.server"]
        return [*argv, "-H", "127.0.0.1", "-p", str(self.port)]

    def start(self) -> None:
        spool = self.workdir / "moto-spool"
        spool.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "TMPDIR": str(spool)}
        if self.iam:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(self.no_auth_actions)
        if self.record is not None:
            env.update(MOTO_ENABLE_RECORDING="1", MOTO_RECORDER_FILEPATH=str(self.record))
        log = (self.workdir / f"moto-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            self.server_argv(), env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=Path(__file__).resolve().parents[2])
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


# -- database servers ---------------------------------------------------------------------------

def _pg_bin() -> Path:
    """The newest installed PostgreSQL server's bin dir (Debian 12: 15)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                   else 0)
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
PG_SUPERUSER = "postgres"
DB_TEST_USER = "drbackup"


def _stop_process(process: subprocess.Popen[bytes] | None, signum: int = signal.SIGINT,
                  timeout: float = 30) -> None:
    children.stop(process, signum, timeout)


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster (15 on Debian 12): initdb in a private temp dir owned by
    the `postgres` system user (PostgreSQL refuses to run as root), listening on
    127.0.0.1:<random port> with password (scram) authentication and its unix socket inside the
    temp dir."""

    password: str = field(default_factory=lambda: "pg-" + secrets.token_hex(12))
    port: int = field(default_factory=free_port)
    root: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.root is not None
        return self.root / "socket"

    def _as_postgres(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", *argv]

    def start(self) -> None:
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="drbackup-pg-"))
            self.root.chmod(0o755)
            pwfile = self.root / "pwfile"
            pwfile.write_text(self.password + "\n")
            self.socket_dir.mkdir()
            if os.geteuid() == 0:
                for path in (self.root, pwfile, self.socket_dir):
                    shutil.chown(path, "postgres", "postgres")
            subprocess.run(
                self._as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data_dir), "-U",
                                   PG_SUPERUSER, f"--pwfile={pwfile}", "--auth-local=trust",
                                   "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C",
                                   "--no-sync"]),
                check=True, capture_output=True, cwd=self.root)
            pwfile.unlink()
        log = (self.root / "postgres.log").open("ab")
        self.process = subprocess.Popen(
            self._as_postgres([str(PG_BIN / "postgres"), "-D", str(self.data_dir),
                               "-p", str(self.port), "-k", str(self.socket_dir),
                               "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                               "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                               "-c", "max_connections=40", "-c", "shared_buffers=32MB"]),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.root)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited; see {self.root / 'postgres.log'}")
            ready = subprocess.run(
                [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True, check=False)
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise TimeoutError("postgres did not become ready")

    def stop(self) -> None:
        _stop_process(self.process)  # SIGINT: fast shutdown
        self.process = None

    def destroy(self) -> None:
        self.stop()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def dsn(self, database: str = "postgres") -> str:
        """A DSN without password: drbackup finds the password in its passfile."""
        return f"postgresql://{PG_SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def env(self) -> dict[str, str]:
        return {**os.environ, "PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "10"}

    def psql(self, sql: str, database: str = "postgres", *, check: bool = True
             ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(PG_BIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At",
             "-d", self.dsn(database)],
            input=sql, capture_output=True, text=True, env=self.env(), check=check)

    def query(self, sql: str, database: str = "postgres") -> str:
        return self.psql(sql, database).stdout.strip()

    def create_database(self, prefix: str = "db") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.psql(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class MariaDBServer:
    """A throwaway MariaDB: mariadb-install-db into a private temp dir, mariadbd on
    127.0.0.1:<random port>, a password-protected user `drbackup` with all privileges."""

    password: str = field(default_factory=lambda: "my-" + secrets.token_hex(12))
    port: int = field(default_factory=free_port)
    root: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        assert self.root is not None
        return self.root / "mariadb.sock"

    def defaults_file(self) -> Path:
        assert self.root is not None
        path = self.root / "client.cnf"
        if not path.exists():
            path.write_text(f"[client]\nuser={DB_TEST_USER}\npassword={self.password}\n"
                            f"host=127.0.0.1\nport={self.port}\n")
            path.chmod(0o600)
        return path

    def start(self) -> None:
        user = "root" if os.geteuid() == 0 else getpass.getuser()
        self.root = Path(tempfile.mkdtemp(prefix="drbackup-mariadb-"))
        data = self.root / "data"
        tmp = self.root / "tmp"
        tmp.mkdir()
        # Native AIO contexts are a host-wide quota (fs.aio-max-nr) that several InnoDB
        # instances (parallel test workers) can exhaust; the tests need no AIO. A private
        # tmpdir: a starting mariadbd removes every #sql* file in its tmpdir, another
        # worker's temporary tables in a shared /tmp included.
        install = subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={data}", f"--user={user}",
             "--auth-root-authentication-method=normal", "--skip-test-db",
             "--innodb-use-native-aio=0", f"--tmpdir={tmp}"],
            check=False, capture_output=True, cwd=self.root)
        if install.returncode != 0:
            raise RuntimeError("mariadb-install-db failed: "
                               + install.stderr.decode(errors="replace")[-2000:])
        log = (self.root / "mariadbd.log").open("ab")
        self.process = subprocess.Popen(
            ["mariadbd", "--no-defaults", f"--datadir={data}", f"--socket={self.socket}",
             f"--port={self.port}", "--bind-address=127.0.0.1", f"--user={user}",
             f"--pid-file={self.root / 'mariadbd.pid'}", "--skip-name-resolve",
             "--innodb-flush-log-at-trx-commit=0", "--innodb-buffer-pool-size=64M",
             "--skip-log-bin", "--innodb-use-native-aio=0", f"--tmpdir={tmp}",
             f"--log-error={self.root / 'error.log'}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.root)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mariadbd exited; see {self.root / 'error.log'}")
            ping = subprocess.run(
                ["mariadb-admin", "--no-defaults", f"--socket={self.socket}", "-uroot", "ping"],
                capture_output=True, check=False)
            if ping.returncode == 0:
                break
            time.sleep(0.1)
        else:
            raise TimeoutError("mariadbd did not become ready")
        setup = (f"CREATE USER '{DB_TEST_USER}'@'%' IDENTIFIED BY '{self.password}';"
                 f"GRANT ALL PRIVILEGES ON *.* TO '{DB_TEST_USER}'@'%' WITH GRANT OPTION;"
                 "FLUSH PRIVILEGES;")
        subprocess.run(["mariadb", "--no-defaults", f"--socket={self.socket}", "-uroot"],
                       input=setup.encode(), check=True, capture_output=True)

    def stop(self) -> None:
        _stop_process(self.process, signal.SIGTERM)
        self.process = None

    def destroy(self) -> None:
        self.stop()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def sql(self, statements: str, database: str = "", *, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
        argv = ["mariadb", f"--defaults-extra-file={self.defaults_file()}", "-N", "-B"]
        if database:
            argv.append(database)
        done = subprocess.run(argv, input=statements, capture_output=True, text=True,
                              check=False)
        if check and done.returncode != 0:
            raise RuntimeError(f"mariadb failed: {done.stderr.strip()}")
        return done

    def query(self, statements: str, database: str = "") -> str:
        return self.sql(statements, database).stdout.strip()

    def create_database(self, prefix: str = "db") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.sql(f"CREATE DATABASE `{name}`")
        return name

    def drop_database(self, name: str) -> None:
        self.drop([name])

    def drop(self, databases: Iterable[str] = (), accounts: Iterable[str] = ()) -> None:
        """What a test made on the shared server, gone again: a later test that dumps the
        whole server (all = true, its users and grants) must not find another test's account
        with a grant on a table it excluded (that grant cannot be replayed elsewhere)."""
        statements = [*(f"DROP DATABASE IF EXISTS `{name}`;" for name in databases),
                      *(f"DROP USER IF EXISTS {account};" for account in accounts)]
        if statements:
            self.sql(" ".join(statements))


IAM_BOOTSTRAP_ACTIONS = 3  # create_user, create_access_key, put_user_policy (the admin)


@dataclass
class IamS3:
    """An IAM-enforcing moto server plus an admin key; creates users with given policies."""

    server: MotoServer
    admin: S3Credentials

    @classmethod
    def start(cls, workdir: Path, *, record: Path | None = None) -> IamS3:
        server = MotoServer(workdir, iam=True, no_auth_actions=IAM_BOOTSTRAP_ACTIONS,
                            record=record)
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
