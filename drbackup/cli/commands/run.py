"""drbackup run: the daemon, in the foreground (systemd's Type=notify service runs this)."""

from __future__ import annotations

from typing import Any

from drbackup.cli.context import CliContext
from drbackup.config import resolve_config_path


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "run", help="run the daemon in the foreground: watch, schedule and back up")
    parser.set_defaults(handler=run_daemon)


def run_daemon(ctx: CliContext) -> int:
    from drbackup.daemon.supervisor import Daemon

    config = ctx.config
    return Daemon(resolve_config_path(ctx.args.config), config).run()
