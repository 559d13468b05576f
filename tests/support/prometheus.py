"""A real Prometheus (the Debian package's /usr/bin/prometheus) as a throwaway subprocess: temp
storage, a random loopback port, 1-second scrape and rule-evaluation intervals."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.servers import free_port


@dataclass
class PrometheusServer:
    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @staticmethod
    def binary() -> str | None:
        return shutil.which("prometheus") or (
            "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)

    def start(self, targets: list[str], rule_files: list[Path], *, job: str = "drbackup") -> None:
        self.start_config({
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                       "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": targets}]}],
        })

    def start_config(self, config: dict[str, Any]) -> None:
        """Start with a whole configuration (e.g. an example file with its targets replaced;
        rule_files given as absolute paths)."""
        binary = self.binary()
        if binary is None:
            raise RuntimeError("prometheus is not installed (Debian package 'prometheus')")
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_path = self.workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        log = (self.workdir / "prometheus.log").open("ab")
        self.process = subprocess.Popen(
            [binary, f"--config.file={config_path}",
             f"--storage.tsdb.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn",
             "--storage.tsdb.retention.time=1h"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:  # noqa: S310
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                if self.process.poll() is not None:
                    raise RuntimeError(f"prometheus exited; see {log.name}") from None
            time.sleep(0.1)
        raise TimeoutError(f"prometheus did not become ready; see {log.name}")

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(  # noqa: S310 - our own loopback server
                f"{self.url}/api/v1/{path}{'?' + query if query else ''}", timeout=10) as r:
            payload = json.loads(r.read())
        if payload.get("status") != "success":
            raise RuntimeError(f"prometheus API {path} failed: {payload}")
        return payload["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        result = data["result"]
        if data["resultType"] == "scalar":
            return [{"value": result}]
        return list(result)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
