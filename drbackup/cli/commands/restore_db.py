"""drbackup restore-db --agency A --source S [--snapshot ID|latest] --into TARGET"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from drbackup.cli.context import CliContext
from drbackup.cli.output import human_bytes
from drbackup.errors import TargetRefusedError
from drbackup.jobs.restore_db import refuse_secret_target, restore_database


class _Once(argparse.Action):
    """An option that may be given once: argparse would keep the last of several silently."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[Any] | None, option_string: str | None = None) -> None:
        if getattr(namespace, self.dest, None) is not None:
            parser.error(f"{option_string} given more than once (only the last would be "
                         f"restored): run one restore-db per database")
        setattr(namespace, self.dest, values)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "restore-db", help="restore a database source's dump into a database or SQLite file")
    parser.add_argument("--agency", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--snapshot", default="latest", help="snapshot id or 'latest'")
    parser.add_argument("--database", action=_Once,
                        help="which database of a source with all = true (tag database=)")
    parser.add_argument("--into", required=True, metavar="TARGET",
                        help="database name (PostgreSQL: or a DSN without password) on the "
                             "source's server, or a new SQLite file path")
    parser.add_argument("--overwrite", action="store_true",
                        help="allow restoring into an existing non-empty database or file")
    parser.add_argument("--clean", action="store_true",
                        help="drop the target's existing objects first (pg_restore --clean; "
                             "MySQL: drop and re-create the database)")
    parser.add_argument("--yes", action="store_true",
                        help="no questions (scripts, runbooks, drills)")
    parser.add_argument("--store", help="restore from this store (e.g. a replica)")
    parser.set_defaults(handler=restore_db_now)


def _confirm(ctx: CliContext) -> None:
    """--overwrite/--clean change an existing database: ask on a terminal, else need --yes."""
    if ctx.args.yes or not (ctx.args.overwrite or ctx.args.clean):
        return
    if not sys.stdin.isatty():
        raise TargetRefusedError("--overwrite/--clean may change an existing database",
                                 "pass --yes to confirm when not running on a terminal")
    answer = input(f"restore into {ctx.args.into!r} may replace its contents; type 'yes': ")
    if answer.strip().lower() != "yes":
        raise TargetRefusedError("restore not confirmed", "nothing was changed")


def restore_db_now(ctx: CliContext) -> int:
    agency = ctx.config.agency(ctx.args.agency)
    source = agency.source(ctx.args.source)
    refuse_secret_target(ctx.args.into)  # before the prompt echoes it
    _confirm(ctx)
    outcome = restore_database(ctx.runtime, agency, source, ctx.args.snapshot, ctx.args.into,
                               overwrite=ctx.args.overwrite, clean=ctx.args.clean,
                               database=ctx.args.database, store_name=ctx.args.store)
    ctx.out.line(f"restored snapshot {outcome.snapshot.short_id} "
                 f"({outcome.snapshot.time:%Y-%m-%d %H:%M:%S %Z}) of {agency.id}/{source.id} "
                 f"into {outcome.into}{' (created)' if outcome.created else ''}: "
                 f"{human_bytes(outcome.bytes)} in {outcome.seconds:.1f}s")
    if outcome.moved_aside:
        ctx.out.line(f"the previous database was moved aside to {outcome.moved_aside[0]}"
                     + "".join(f", {path}" for path in outcome.moved_aside[1:]))
    ctx.out.result(outcome)
    return 0
