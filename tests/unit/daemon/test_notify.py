"""sd_notify over a real AF_UNIX datagram socket, including abstract '@' addresses."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

from drbackup.daemon.notify import Notifier
from drbackup.engine.runner import child_environment


def test_abstract_socket_receives_ready_status_watchdog_stopping() -> None:
    name = f"drbackup-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(5)
        notifier = Notifier({"NOTIFY_SOCKET": f"@{name}", "WATCHDOG_USEC": "3000000"})
        assert notifier.enabled and notifier.watchdog_interval == 1.5
        notifier.ready("1 source")
        assert sock.recv(1024).decode().splitlines() == ["READY=1", "STATUS=1 source"]
        notifier.status("1 source")  # unchanged: not sent again
        notifier.status("2 sources")
        assert sock.recv(1024) == b"STATUS=2 sources"
        assert notifier.watchdog_due(now=100.0)
        notifier.watchdog(now=100.0)
        assert sock.recv(1024) == b"WATCHDOG=1"
        assert not notifier.watchdog_due(now=101.0) and notifier.watchdog_due(now=101.6)
        notifier.stopping()
        assert sock.recv(1024).decode().splitlines()[0] == "STOPPING=1"


def test_without_socket_nothing_is_sent_and_watchdog_for_other_pid_is_off(
        tmp_path: Path) -> None:
    assert not Notifier({}).send("READY=1")
    other = Notifier({"NOTIFY_SOCKET": str(tmp_path / "s"), "WATCHDOG_USEC": "1000000",
                      "WATCHDOG_PID": str(os.getpid() + 1)})
    assert other.watchdog_interval is None


def test_notify_socket_is_not_passed_to_restic(monkeypatch: object) -> None:
    os.environ["NOTIFY_SOCKET"] = "/run/systemd/notify"
    try:
        assert "NOTIFY_SOCKET" not in child_environment({})
    finally:
        del os.environ["NOTIFY_SOCKET"]
