"""drbackup metrics [--output FILE]: the Prometheus exposition computed from the state database,
once, without a daemon (for tests, checks and node-exporter's textfile collector)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from drbackup.cli.context import CliContext
from drbackup.errors import UsageError


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "metrics", help="print the Prometheus metrics computed from state (no daemon needed)")
    parser.add_argument(
        "--output", metavar="FILE",
        help="write to FILE atomically (e.g. node-exporter's textfile directory, *.prom) "
             "instead of standard output")
    parser.add_argument(
        "--serve", action="store_true",
        help="instead of printing once, serve /metrics on daemon.metrics_listen until stopped "
             "(a standalone exporter for hosts that run backups from cron, without the daemon)")
    parser.set_defaults(handler=print_metrics)


def serve_until_stopped(ctx: CliContext) -> int:
    from drbackup.metrics.server import serve_metrics

    server = serve_metrics(ctx.config, ctx.runtime.state, None)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"serving {server.url}", flush=True)
    try:
        while not stop.wait(3600):
            pass
    finally:
        server.stop()
    return 0


def print_metrics(ctx: CliContext) -> int:
    # prometheus_client is imported only when metrics are asked for (other verbs start fast)
    from drbackup.metrics.collector import StateCollector
    from drbackup.metrics.server import exposition

    if ctx.args.serve:
        return serve_until_stopped(ctx)
    body = exposition(StateCollector(ctx.config, ctx.runtime.state, None))
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
        raise UsageError(f"cannot write metrics to {target}: {exc.strerror}",
                         "check the directory exists and is writable") from None
    ctx.out.line(f"metrics written to {target}")
    return 0
