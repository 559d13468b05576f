"""The dump guard: restic's --stdin-from-command runs this, and this runs the real dump.

    python -m drbackup.sources.dumpguard --min-size N --timeout S --report FILE -- pg_dump ...

It streams the dump's stdout through to restic, counts the bytes, and exits non-zero (with the
dump's stderr tail on its own stderr) when the dump exits non-zero, is killed, runs past its time
limit or produced fewer than min-size bytes. restic then cancels the backup: no snapshot is made.
The report file (JSON) tells the backup job what happened, for the run record.

The dump runs without restic's repository password and store credentials in its environment.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import IO

import drbackup.children as children
from drbackup.sources.base import DumpReport

CHUNK = 1 << 20
TAIL_LINES = 20
_PRIVATE_ENV_PREFIXES = ("RESTIC_", "AWS_")
EXIT_FAILED = 1
EXIT_USAGE = 2


def _child_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items()
            if not key.startswith(_PRIVATE_ENV_PREFIXES)}


def _collect(stream: IO[bytes], tail: deque[str]) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", errors="replace").rstrip()
        if line:
            tail.append(line)


def _describe(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with code {returncode}"


def guard(command: Sequence[str], *, min_size: int, timeout: float, label: str,
          out: IO[bytes], err: IO[str]) -> DumpReport:
    """Run command, copy its stdout to out, and judge the result."""
    started = time.monotonic()
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    try:
        process = children.start(command, env=_child_env(), stdout="pipe", stderr="pipe")
    except OSError as exc:
        return DumpReport(False, 0, 0.0, f"{command[0]} could not be started: {exc.strerror}")
    assert process.stdout is not None and process.stderr is not None
    reader = threading.Thread(target=_collect, args=(process.stderr, tail), daemon=True)
    reader.start()
    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        process.kill()

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    count = 0
    broken = False
    try:
        for chunk in iter(lambda: process.stdout.read(CHUNK), b""):  # type: ignore[union-attr]
            count += len(chunk)
            try:
                out.write(chunk)
            except (BrokenPipeError, OSError):
                broken = True
                process.kill()
                break
        if not broken:
            try:
                out.flush()
            except (BrokenPipeError, OSError):
                broken = True
        returncode = process.wait()
    finally:
        timer.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=10)
        process.stdout.close()
        process.stderr.close()
    seconds = time.monotonic() - started
    stderr_tail = "\n".join(tail)
    reason = ""
    if timed_out.is_set():
        reason = f"{label} did not finish within {timeout:.0f}s and was stopped"
    elif broken:
        reason = f"the reader of {label}'s output (restic) went away"
    elif returncode != 0:
        reason = f"{label} {_describe(returncode)}"
    elif count < min_size:
        reason = (f"{label} produced only {count} bytes, less than the minimum plausible "
                  f"size of {min_size} bytes")
    report = DumpReport(ok=not reason, bytes=count, seconds=seconds, reason=reason,
                        returncode=returncode, stderr_tail=stderr_tail, reader_gone=broken)
    if reason:
        text = f"drbackup: dump failed: {reason}"
        if stderr_tail:
            text += "\n" + stderr_tail
        print(text, file=err, flush=True)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drbackup.sources.dumpguard")
    parser.add_argument("--min-size", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=6 * 3600)
    parser.add_argument("--report", help="write the JSON report here")
    parser.add_argument("--label", default="the dump")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print("drbackup dumpguard: no dump command given", file=sys.stderr)
        return EXIT_USAGE
    report = guard(command, min_size=args.min_size, timeout=args.timeout, label=args.label,
                   out=sys.stdout.buffer, err=sys.stderr)
    if args.report:
        with open(args.report, "w", encoding="utf-8") as handle:
            handle.write(report.to_json())
    return 0 if report.ok else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
