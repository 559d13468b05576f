"""The drbackup daemon as a real subprocess (`python -m drbackup --config X run`), with helpers
to wait for what it logs, its restic children, and the runs it records."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tests.support.workspace import Workspace

T = TypeVar("T")
_METRICS_URL = re.compile(r"serving metrics on (\S+)")


def wait_for(predicate: Callable[[], T | None], timeout: float, what: str, interval: float = 0.2
             ) -> T:
    """Poll until predicate() is truthy; generous timeouts, no timing asserted."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def children(pid: int) -> list[int]:
    """Direct child pids of pid (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


class DaemonProcess:
    def __init__(self, ws: Workspace, *, env: dict[str, str] | None = None,
                 watch_faults: str | None = None):
        """The daemon as systemd runs it; `watch_faults` runs it through
        tests/support/faulty_daemon.py with those watcher faults injected."""
        self.ws = ws
        self.log_path = ws.root / f"daemon-{time.monotonic_ns()}.log"
        ws.write()
        full_env = ws.env()
        full_env.update(env or {})
        self._log = self.log_path.open("wb")
        entry = (["-m", "drbackup"] if watch_faults is None
                 else ["-m", "tests.support.faulty_daemon", watch_faults])
        self.process = subprocess.Popen(
            [sys.executable, *entry, "--config", str(ws.config_path), "--log-format", "json",
             "run"], stdout=self._log, stderr=subprocess.STDOUT, env=full_env,
            cwd=Path(__file__).resolve().parents[2])

    @property
    def pid(self) -> int:
        return self.process.pid

    def logs(self) -> list[dict[str, Any]]:
        entries = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                entry = {"msg": line, "raw": True}
            if isinstance(entry, dict):
                entries.append(entry)
        return entries

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def events(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.logs() if e.get("event") == event]

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"daemon exited {self.process.returncode}:\n"
                                     f"{self.log_text()}")
            return bool(self.events("ready"))
        wait_for(ready, timeout, "daemon ready")

    def metrics_url(self, timeout: float = 60) -> str:
        """The /metrics URL the daemon logged it serves (metrics_listen port 0: any port)."""
        def find() -> str | None:
            for entry in self.events("metrics_listening"):
                match = _METRICS_URL.search(str(entry.get("msg", entry.get("message", ""))))
                if match:
                    return match.group(1)
            return None
        return wait_for(find, timeout, f"the metrics URL in the daemon log:\n{self.log_text()}")

    def restic_children(self) -> list[int]:
        found = []
        for pid in children(self.pid):
            args = cmdline(pid)  # read once: the child may end between two reads
            if args and Path(args[0]).name == "restic":
                found.append(pid)
        return found

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 90) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def kill_hard(self) -> None:
        """kill -9 the daemon and its restic children (a crash: systemd would reap the cgroup)."""
        kids = children(self.pid)
        self.process.kill()
        self.process.wait()
        for pid in kids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        # Gone for good (reaped by init), as after a reboot or systemd's cgroup kill: until
        # then restic rightly treats their locks as held by a live process.
        wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in kids), 60,
                 "killed restic processes reaped")
        self._log.close()


def runs(ws: Workspace, *, job: str = "backup") -> list[dict[str, Any]]:
    """Rows of the runs table, oldest first (read-only, while the daemon may write)."""
    path = ws.state_dir / "state.db"
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT * FROM runs WHERE job = ? ORDER BY id", (job,)).fetchall()
        return [dict(row) for row in rows]
    finally:
        conn.close()


def kv(ws: Workspace, key: str) -> str | None:
    path = ws.state_dir / "state.db"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])
    finally:
        conn.close()


def successes(ws: Workspace, agency: str, source: str) -> list[dict[str, Any]]:
    return [r for r in runs(ws) if r["agency"] == agency and r["source"] == source
            and r["result"] in ("success", "warning")]
