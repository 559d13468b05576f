"""drbackup metrics [--output FILE]: the Prometheus exposition computed from the state database,
once, without a daemon (for tests, checks and node-exporter's textfile collector)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest

from drbackup.cli.context import CliContext
from drbackup.errors import DrBackupError, ExitCode
from drbackup.metrics.server import build_registry


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "metrics", help="print the Prometheus metrics computed from state (no daemon needed)")
    parser.add_argument(
        "--output", metavar="FILE",
        help="write to FILE atomically (e.g. node-exporter's textfile directory, *.prom) "
             "instead of standard output")
    parser.set_defaults(handler=print_metrics)


def print_metrics(ctx: CliContext) -> int:
    registry, _ = build_registry(ctx.config, ctx.runtime.state, None, process_metrics=False)
    body = generate_latest(registry)
    if not ctx.args.output:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
        return 0
    target = Path(ctx.args.output)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        raise DrBackupError(f"cannot write metrics to {target}: {exc.strerror}",
                            "check the directory exists and is writable",
                            exit_code=ExitCode.USAGE) from None
    ctx.out.line(f"metrics written to {target}")
    return 0
