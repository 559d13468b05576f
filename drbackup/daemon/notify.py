"""sd_notify(3) without dependencies: one AF_UNIX datagram of KEY=VALUE lines to $NOTIFY_SOCKET
("@name" is an abstract address). Without the variable every call does nothing.

NOTIFY_SOCKET never reaches restic: drbackup/engine/runner.py passes children an allow-list of
variables only.
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None):
        env = dict(os.environ) if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self._address: str | bytes | None = None
        if address.startswith("@"):
            self._address = b"\0" + address[1:].encode()
        elif address.startswith("/"):
            self._address = address
        self.watchdog_interval: float | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            # Ping at half the interval systemd expects (sd_watchdog_enabled(3)).
            self.watchdog_interval = int(usec) / 1_000_000 / 2
        self._last_watchdog = 0.0
        self._last_status = ""

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, *lines: str) -> bool:
        if self._address is None:
            return False
        payload = "\n".join(lines).encode("utf-8", errors="replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self._address)
                sock.sendall(payload)
            return True
        except OSError as exc:
            log.warning("sd_notify failed: %s", exc)
            return False

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")
        self._last_status = status

    def status(self, status: str) -> None:
        if status != self._last_status:
            self.send(f"STATUS={status}")
            self._last_status = status

    def reloading(self) -> None:
        self.send("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")

    def reloaded(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")
        self._last_status = status

    def stopping(self, status: str = "stopping") -> None:
        self.send("STOPPING=1", f"STATUS={status}")

    def watchdog_due(self, now: float | None = None) -> bool:
        if self.watchdog_interval is None:
            return False
        now = time.monotonic() if now is None else now
        return now - self._last_watchdog >= self.watchdog_interval

    def watchdog(self, now: float | None = None) -> None:
        """Ping; call only after checking the loop and the workers made progress."""
        self._last_watchdog = time.monotonic() if now is None else now
        self.send("WATCHDOG=1")
