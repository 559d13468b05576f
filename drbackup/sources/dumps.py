"""Shared parts of the dump source kinds: a private per-run directory for generated credential
files and the dump report, and the guarded command restic runs."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO

import drbackup.children as children
from drbackup.sources.base import BackupPlan, DumpError

# restic stops a dump run this much later than the guard would, so the guard's clear message
# normally wins; restic's own limit still covers restic hanging after an upload failure.
RESTIC_GRACE = timedelta(minutes=2)
STDERR_TAIL_LINES = 20


class PrivateDir:
    """A 0700 temp directory for one run's generated secrets; removed by cleanup()."""

    def __init__(self, prefix: str = "drbackup-", parent: Path | None = None) -> None:
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        os.chmod(self.path, 0o700)

    def write_secret(self, name: str, content: str) -> Path:
        """A file only its owner can read, created with that mode (never briefly wider)."""
        path = self.path / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        return path

    def cleanup(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def read_password_file(path: Path) -> str:
    """The first line of a password file. Raises DumpError when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DumpError(f"password file {path} cannot be read: {exc.strerror}",
                        "check the path and that it is readable by the service user") from None
    lines = text.splitlines()
    return lines[0] if lines else ""


def guarded(command: Sequence[str], *, min_size: int, timeout: timedelta, report: Path,
            label: str) -> list[str]:
    """The argv restic runs: the dump guard around the real dump command."""
    return [sys.executable, "-m", "drbackup.sources.dumpguard",
            "--min-size", str(min_size), "--timeout", str(int(timeout.total_seconds())),
            "--report", str(report), "--label", label, "--", *command]


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def dump_plan(command: Sequence[str], *, workdir: PrivateDir, name: str, min_size: int,
              timeout: timedelta, stdin_filename: str, env: Mapping[str, str],
              tags: Sequence[str], label: str) -> BackupPlan:
    """A BackupPlan streaming a guarded dump into restic."""
    report = workdir.path / f"{name}.report.json"
    return BackupPlan(
        stdin_command=guarded(command, min_size=min_size, timeout=timeout, report=report,
                              label=label),
        stdin_filename=stdin_filename, command_env=dict(env), extra_tags=list(tags),
        label=label, dump_report=str(report))


def find_binary(explicit: str | None, candidates: Sequence[str], bin_dir: Path | None = None
                ) -> str:
    """explicit, else bin_dir/<first candidate>, else the first candidate on PATH."""
    if explicit:
        return explicit
    if bin_dir is not None:
        return str(bin_dir / candidates[0])
    for name in candidates:
        found = shutil.which(name)
        if found:
            return found
    return candidates[0]


@dataclass(frozen=True)
class ToolResult:
    returncode: int
    stdout: str
    stderr_tail: str


def run_tool(argv: Sequence[str], env: Mapping[str, str], *, input_text: str | None = None,
             timeout: float = 300) -> ToolResult:
    """Run a database client tool (psql, mariadb...) to completion. Raises DumpError when it
    cannot be started or runs past its time limit."""
    try:
        done = children.run(argv, env=env, input_text=input_text, timeout=timeout)
    except FileNotFoundError:
        raise DumpError(f"{argv[0]} is not installed",
                        "install the database client tools or set bin_dir / the binary path"
                        ) from None
    except children.ChildTimeout:
        raise DumpError(f"{Path(argv[0]).name} did not answer within {timeout:.0f}s",
                        "check that the database server is up") from None
    tail = "\n".join([line for line in done.stderr.splitlines() if line.strip()]
                     [-STDERR_TAIL_LINES:])
    return ToolResult(done.returncode, done.stdout, tail)


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no error text"


def feed_tool(argv: Sequence[str], env: Mapping[str, str],
              feed: Callable[[IO[bytes]], None], *, what: str) -> None:
    """Start a consumer (pg_restore, mariadb...) and let `feed` write into its stdin.

    Raises DumpError when the consumer fails; errors raised by feed propagate (the consumer is
    stopped first)."""
    with tempfile.TemporaryFile() as errlog:
        try:
            process = children.start(argv, env=env, stdin="pipe", stdout="devnull",
                                     stderr=errlog)
        except FileNotFoundError:
            raise DumpError(f"{argv[0]} is not installed",
                            "install the database client tools") from None
        assert process.stdin is not None
        fed_error: BaseException | None = None
        try:
            feed(process.stdin)
        except BrokenPipeError:
            pass  # the consumer stopped reading: its exit code and stderr say why
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after the consumer stops
            fed_error = exc
            process.kill()
        finally:
            with suppress(BrokenPipeError, OSError):
                process.stdin.close()
        returncode = process.wait()
        if fed_error is not None:
            raise fed_error
        errlog.seek(0)
        text = errlog.read().decode("utf-8", errors="replace")
        tail = "\n".join([line for line in text.splitlines() if line.strip()]
                         [-STDERR_TAIL_LINES:])
        if returncode != 0:
            raise DumpError(f"{what} failed (exit {returncode}): {last_line(tail)}",
                            "see the run's stderr tail; the target may be partly restored",
                            stderr_tail=tail)


class CountingSink:
    """Counts bytes on their way into the consumer's stdin."""

    def __init__(self, sink: IO[bytes]) -> None:
        self.sink = sink
        self.count = 0

    def write(self, data: bytes) -> int:
        self.count += len(data)
        return self.sink.write(data)

    def flush(self) -> None:
        self.sink.flush()
