"""Starting restic processes: a clean environment, a wall-clock timeout, line-by-line reading of
stdout and stderr, and a registry so the daemon can stop every running child on shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import IO

from drbackup.engine.jsonlines import JsonObject, ParsedLines, parse_line, parse_lines

# Only these variables of our own environment reach restic; everything else (NOTIFY_SOCKET,
# RESTIC_PASSWORD, AWS_* of the operator's shell) is left behind on purpose.
_INHERITED_ENV = (
    "PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
)
KILL_AFTER_TERM_SECONDS = 15.0
STDERR_KEEP_LINES = 400


@dataclass
class ProcessResult:
    argv: list[str]
    returncode: int
    stdout: ParsedLines
    stderr: ParsedLines
    duration: float
    timed_out: bool
    terminated: bool  # stopped by us (shutdown), not by a timeout

    def stderr_tail(self, lines: int = 20) -> str:
        texts = list(self.stderr.text)
        for message in self.stderr.messages:
            if "message" in message or "error" in message:
                texts.append(str(message.get("message") or message.get("error")))
        return "\n".join(texts[-lines:])


class _Registry:
    """Running children, so a shutdown can ask each to stop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._processes: dict[int, subprocess.Popen[bytes]] = {}
        self._terminated: set[int] = set()

    def add(self, process: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._processes[process.pid] = process

    def remove(self, process: subprocess.Popen[bytes]) -> bool:
        with self._lock:
            self._processes.pop(process.pid, None)
            was_terminated = process.pid in self._terminated
            self._terminated.discard(process.pid)
            return was_terminated

    def count(self) -> int:
        with self._lock:
            return len(self._processes)

    def terminate_all(self) -> int:
        """SIGTERM every running child (restic ≥ 0.17 then stops cleanly and removes its lock)."""
        with self._lock:
            processes = list(self._processes.values())
            self._terminated.update(p.pid for p in processes)
        for process in processes:
            _signal_group(process, signal.SIGTERM)
        return len(processes)


RUNNING = _Registry()


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def child_environment(extra: Mapping[str, str]) -> dict[str, str]:
    env = {key: os.environ[key] for key in _INHERITED_ENV if key in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(extra)
    return env


def _read_stderr(stream: IO[bytes], sink: list[str]) -> None:
    for raw in iter(stream.readline, b""):
        sink.append(raw.decode("utf-8", errors="replace"))
        if len(sink) > STDERR_KEEP_LINES * 2:
            del sink[:STDERR_KEEP_LINES]


@contextmanager
def _deadline(process: subprocess.Popen[bytes], timeout: float | None,
              fired: threading.Event) -> Iterator[None]:
    """SIGTERM the process group at the deadline, SIGKILL it if it is still there later."""
    if timeout is None:
        yield
        return

    def expire() -> None:
        fired.set()
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(KILL_AFTER_TERM_SECONDS)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


# Progress lines: delivered, not kept (verbose_status too, should a caller ever pass -vv: a
# line per file would otherwise be held in memory).
_DELIVERED_ONLY = frozenset({"status", "verbose_status"})


def run_process(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    timeout: float | None,
    on_message: Callable[[JsonObject], None] | None = None,
    stdout_sink: IO[bytes] | None = None,
    cwd: str | None = None,
    pass_fds: tuple[int, ...] = (),
) -> ProcessResult:
    """Run argv to completion. stdout is parsed as JSON lines (each object handed to on_message
    as it arrives) unless stdout_sink is given, in which case it is copied there raw.
    pass_fds: descriptors the child inherits (a memfd restic's rclone child reads as /dev/fd/N).

    Raises FileNotFoundError / PermissionError when the binary cannot be started.
    """
    started = time.monotonic()
    # Its own session: a terminal's Ctrl-C or systemd's SIGTERM reach restic only through us.
    process = subprocess.Popen(
        list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        pass_fds=pass_fds,
    )
    RUNNING.add(process)
    stderr_lines: list[str] = []
    stdout_lines: list[str] = []
    timed_out = threading.Event()
    assert process.stdout is not None and process.stderr is not None
    reader = threading.Thread(target=_read_stderr, args=(process.stderr, stderr_lines), daemon=True)
    reader.start()
    try:
        with _deadline(process, timeout, timed_out):
            if stdout_sink is not None:
                for chunk in iter(lambda: process.stdout.read(1 << 20), b""):  # type: ignore[union-attr]
                    stdout_sink.write(chunk)
            else:
                for raw in iter(process.stdout.readline, b""):
                    line = raw.decode("utf-8", errors="replace")
                    message = parse_line(line)
                    if message is not None and message.get("message_type") in _DELIVERED_ONLY:
                        # Delivered, not kept: a long backup sends thousands of these.
                        if on_message is not None:
                            on_message(message)
                        continue
                    stdout_lines.append(line)
                    if message is not None and on_message is not None:
                        on_message(message)
            returncode = process.wait()
    except BaseException:
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(KILL_AFTER_TERM_SECONDS)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()
        raise
    finally:
        terminated = RUNNING.remove(process)
        reader.join(timeout=5)
        process.stdout.close()
        process.stderr.close()
    return ProcessResult(
        argv=list(argv),
        returncode=returncode,
        stdout=parse_lines(stdout_lines),
        stderr=parse_lines(stderr_lines),
        duration=time.monotonic() - started,
        timed_out=timed_out.is_set(),
        terminated=terminated,
    )
