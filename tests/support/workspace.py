"""A test's world: data directories, secret files (mode 0600), a config built as a dict and
written as TOML, and the drbackup CLI run as a real subprocess against it."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from tests.support.servers import TEST_ACCESS_KEY, TEST_SECRET_KEY, MotoServer


@dataclass
class Workspace:
    root: Path
    config: dict[str, Any] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        (self.root / "secrets").mkdir(parents=True, exist_ok=True)
        self.config.setdefault("daemon", {
            "state_dir": str(self.root / "state"),
            "cache_dir": str(self.root / "cache"),
            "hostname": "test-host",
            "metrics_listen": "127.0.0.1:0",
        })
        self.config.setdefault("stores", {})
        self.config.setdefault("agencies", [])

    @property
    def config_path(self) -> Path:
        return self.root / "drbackup.toml"

    @property
    def state_dir(self) -> Path:
        return Path(self.config["daemon"]["state_dir"])

    def secret_file(self, name: str, content: str, mode: int = 0o600) -> Path:
        path = self.root / "secrets" / name
        path.write_text(content)
        path.chmod(mode)
        return path

    def add_s3_store(self, name: str, server: MotoServer, bucket: str, *,
                     access_key: str = TEST_ACCESS_KEY, secret_key: str = TEST_SECRET_KEY,
                     **extra: Any) -> Path:
        credentials = self.secret_file(
            f"{name}.credentials",
            f"[default]\naws_access_key_id = {access_key}\naws_secret_access_key = {secret_key}\n")
        self.config["stores"][name] = {"url": server.url(bucket),
                                       "credentials_file": str(credentials), **extra}
        return credentials

    def add_agency(self, agency_id: str, *, store: str = "local", password: str | None = None,
                   **extra: Any) -> dict[str, Any]:
        password = password or f"pw-{agency_id}-{secrets.token_hex(8)}"
        self.passwords[agency_id] = password
        path = self.secret_file(f"{agency_id}.password", password + "\n")
        agency: dict[str, Any] = {"id": agency_id, "password_file": str(path), "store": store,
                                  "sources": [], **extra}
        self.config["agencies"].append(agency)
        return agency

    def agency(self, agency_id: str) -> dict[str, Any]:
        for agency in self.config["agencies"]:
            if agency["id"] == agency_id:
                return agency  # type: ignore[no-any-return]
        raise KeyError(agency_id)

    def add_directory_source(self, agency_id: str, source_id: str, paths: list[Path],
                             **extra: Any) -> dict[str, Any]:
        source = {"id": source_id, "kind": "directory", "paths": [str(p) for p in paths], **extra}
        self.agency(agency_id)["sources"].append(source)
        return source

    def add_source(self, agency_id: str, source_id: str, kind: str, **settings: Any
                   ) -> dict[str, Any]:
        """Any source kind, settings as in the config file (paths as strings)."""
        source = {"id": source_id, "kind": kind, **settings}
        self.agency(agency_id)["sources"].append(source)
        return source

    def write(self) -> Path:
        self.config_path.write_text(tomli_w.dumps(self.config))
        return self.config_path

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("DRBACKUP_CONFIG", None)
        env["HOME"] = str(self.root / "home")
        return env

    def cli_argv(self) -> list[str]:
        """The argv prefix that runs drbackup on this workspace's config."""
        return [sys.executable, "-m", "drbackup", "--config", str(self.config_path)]

    def cli(self, *args: str, check: bool = False, timeout: float = 600,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run `drbackup --config <ours> ARGS` as a subprocess."""
        self.write()
        result = subprocess.run(
            [*self.cli_argv(), *args],
            capture_output=True, text=True, timeout=timeout, env=env or self.env(), check=False)
        if check and result.returncode != 0:
            raise AssertionError(
                f"drbackup {' '.join(args)} exited {result.returncode}\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}")
        return result
