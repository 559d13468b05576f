"""The one door for child processes other than restic (restic's is engine/runner.py): database
client tools, the dump guard's dump command, SQL replays and the drill's database servers all
start here (#15 item 3). The rules live in one place:

- the environment is always given whole (`env=`), never inherited: a child sees no PG*, MYSQL*,
  AWS* or RESTIC_* variable and no secret drbackup did not mean to pass;
- stdin is closed unless the caller feeds it;
- `without_capabilities` starts a program without the ambient/inheritable capabilities the
  daemon may hold (the unit's CAP_DAC_READ_SEARCH), for anything that replays or serves an
  agency's SQL;
- a time limit is a `ChildTimeout`, a program that cannot be started an `OSError`; callers turn
  both into their own one-line errors.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

Process = subprocess.Popen[bytes]
Stream = Literal["devnull", "pipe"] | IO[bytes] | int
_STREAMS = {"devnull": subprocess.DEVNULL, "pipe": subprocess.PIPE}


class ChildTimeout(TimeoutError):
    """The child ran past its time limit (it was killed)."""


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str


def _stream(value: Stream) -> int | IO[bytes]:
    return _STREAMS[value] if isinstance(value, str) else value


def run(argv: Sequence[str], *, env: Mapping[str, str], timeout: float,
        input_text: str | None = None, cwd: Path | None = None,
        log: IO[bytes] | None = None) -> Finished:
    """Run to completion. Output is captured as text, or with `log` written there (stdout and
    stderr together). Raises OSError when it cannot be started, ChildTimeout past `timeout`."""
    try:
        if log is not None:
            done = subprocess.run(list(argv), stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=subprocess.STDOUT, env=dict(env), cwd=cwd,
                                  timeout=timeout, check=False)
            return Finished(done.returncode, "", "")
        completed = subprocess.run(list(argv), input=input_text, capture_output=True, text=True,
                                   stdin=None if input_text is not None else subprocess.DEVNULL,
                                   env=dict(env), cwd=cwd, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise ChildTimeout(f"{argv[0]} ran past {timeout:.0f}s") from None
    return Finished(completed.returncode, completed.stdout, completed.stderr)


def probe(argv: Sequence[str], *, env: Mapping[str, str], timeout: float = 30
          ) -> Finished | None:
    """Run a quick question (`--version`, a readiness ping); None when it could not run."""
    with contextlib.suppress(OSError, ChildTimeout):
        return run(argv, env=env, timeout=timeout)
    return None


def start(argv: Sequence[str], *, env: Mapping[str, str], stdin: Stream = "devnull",
          stdout: Stream = "devnull", stderr: Stream | Literal["stdout"] = "pipe",
          cwd: Path | None = None, new_session: bool = False) -> Process:
    """Start a child the caller talks to (feeds, reads, stops). Raises OSError."""
    err = subprocess.STDOUT if stderr == "stdout" else _stream(stderr)
    return subprocess.Popen(list(argv), stdin=_stream(stdin), stdout=_stream(stdout),
                            stderr=err, env=dict(env), cwd=cwd, start_new_session=new_session)


def stop(process: Process | None, signum: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Ask a child to end with `signum`; killed when it is still there after `timeout`."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signum)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait()


def minimal_env() -> dict[str, str]:
    """PATH, a C locale and UTC: enough for a tool that asks nothing of the environment."""
    return {"PATH": os.environ.get("PATH") or "/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C", "LC_ALL": "C", "TZ": "UTC"}


def _ambient_capabilities() -> bool:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapAmb:"):
                return int(line.split()[1], 16) != 0
    except (OSError, ValueError, IndexError):
        pass
    return False


def without_capabilities(argv: list[str]) -> list[str]:
    """argv started without the ambient (and inheritable) capabilities drbackup may hold, e.g.
    the unit's CAP_DAC_READ_SEARCH: a server or a replay must not read the host's files."""
    if not _ambient_capabilities() or shutil.which("setpriv") is None:
        return argv
    return ["setpriv", "--inh-caps=-all", "--ambient-caps=-all", "--", *argv]
