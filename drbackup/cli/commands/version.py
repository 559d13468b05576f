"""drbackup version"""

from __future__ import annotations

from typing import Any

from drbackup import __version__
from drbackup.cli.context import CliContext
from drbackup.engine import Restic, ResticError, ResticSettings
from drbackup.errors import ConfigError


def register(commands: Any) -> None:
    parser = commands.add_parser("version", help="drbackup and restic versions")
    parser.set_defaults(handler=show_version)


def show_version(ctx: CliContext) -> int:
    """Works without a config: restic is then looked up on PATH."""
    try:
        restic = ctx.runtime.restic
    except ConfigError:
        restic = Restic(ResticSettings())
    try:
        found = str(restic.require_supported())
        problem = None
    except ResticError as exc:
        found, problem = None, exc.one_line()
    ctx.out.result({"drbackup": __version__, "restic": found, "restic_problem": problem},
                   f"drbackup {__version__}\nrestic {found or 'unusable: ' + str(problem)}")
    return 0 if problem is None else int(ResticError.exit_code)
