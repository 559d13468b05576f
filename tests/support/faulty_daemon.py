"""`python -m tests.support.faulty_daemon FAULTS drbackup-args...`: the real CLI and the real
daemon, with watcher faults (tests/unit/daemon/test_watcher.py's WatchFaults.parse syntax:
"overflow:agency/source,enospc:agency/source,emfile:agency/source") passed to the Daemon's
constructor. Product code reads no test variable (#15 item 6)."""

from __future__ import annotations

import sys

import drbackup.cli.commands.run as run_command
from drbackup.cli.context import CliContext
from drbackup.cli.main import main
from drbackup.config import resolve_config_path
from drbackup.daemon.supervisor import Daemon
from drbackup.daemon.watcher import WatchFaults


def _run_with(faults: WatchFaults) -> None:
    def run_daemon(ctx: CliContext) -> int:
        return Daemon(resolve_config_path(ctx.args.config), ctx.config, faults=faults).run()

    run_command.run_daemon = run_daemon  # `register` binds the verb's handler when called


if __name__ == "__main__":
    _run_with(WatchFaults.parse(sys.argv[1]))
    sys.exit(main(sys.argv[2:]))
