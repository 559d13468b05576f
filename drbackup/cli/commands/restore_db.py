"""drbackup restore-db --agency A --source S [--snapshot ID|latest | --at TIME] --into TARGET
[--schema NAME ...] [--table [SCHEMA.]NAME ...] | --all-databases
[--target NAME | --target-host H [--target-port P] --target-user U --target-password-file F]
[--no-owner] [--no-privileges]"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from drbackup.cli.context import CliContext
from drbackup.cli.output import human_bytes
from drbackup.config.loader import check_secret_file
from drbackup.config.models import (
    AgencyConfig,
    MysqlSource,
    PostgresSource,
    RestoreTarget,
    Source,
)
from drbackup.config.models.restore_targets import ad_hoc_target
from drbackup.errors import TargetRefusedError, UsageError
from drbackup.jobs.restore import parse_at
from drbackup.jobs.restore_db import PartialSelection, refuse_secret_target, restore_database
from drbackup.jobs.restore_db_all import (
    DatabaseResult,
    plan_all_databases,
    restore_all_databases,
)


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
    parser.add_argument("--at", metavar="TIME",
                        help='the newest snapshot taken at or before TIME: "2026-11-20 14:00" '
                             '(local time; add "UTC", a zone name or an offset), or "2h ago"')
    parser.add_argument("--schema", action="append", default=[], metavar="NAME",
                        help="PostgreSQL: restore only this schema, with everything in it "
                             "(repeatable)")
    parser.add_argument("--table", action="append", default=[], metavar="[SCHEMA.]NAME",
                        help="restore only this table, with its data, indexes, constraints, "
                             "triggers and grants (repeatable; PostgreSQL and MariaDB/MySQL)")
    parser.add_argument("--all-databases", action="store_true",
                        help="every database of the source's snapshots, each under its own "
                             "name: the globals (roles) first, one failure not stopping the rest")
    parser.add_argument("--database", action=_Once,
                        help="which database of a source with all = true (tag database=)")
    parser.add_argument("--into", metavar="TARGET",
                        help="database name (PostgreSQL: or a DSN without password) on the "
                             "source's server, or a new SQLite file path; with a target "
                             "server a database name, by default the dumped database's")
    server = parser.add_argument_group(
        "another server (the disaster case)",
        "restore onto a server other than the source's; the password goes to the client in a "
        "private PGPASSFILE / defaults file, never on the command line")
    server.add_argument("--target", metavar="NAME",
                        help="a [[restore_targets]] entry of the config")
    server.add_argument("--target-host", metavar="HOST",
                        help="server host (PostgreSQL: or its unix socket directory)")
    server.add_argument("--target-port", type=int, metavar="PORT",
                        help="server port (default 5432 / 3306)")
    server.add_argument("--target-user", metavar="USER", help="user that restores")
    server.add_argument("--target-password-file", type=Path, metavar="FILE",
                        help="file holding that user's password (mode 0600)")
    parser.add_argument("--no-owner", action="store_true",
                        help="PostgreSQL: objects owned by the restoring user, not the dump's "
                             "roles (pg_restore --no-owner); MariaDB/MySQL always so")
    parser.add_argument("--no-privileges", action="store_true",
                        help="PostgreSQL: leave out the dump's grants (pg_restore "
                             "--no-privileges); MariaDB/MySQL dumps hold none")
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
    into = ctx.args.into or "the dumped database"
    answer = input(f"restore into {into!r} may replace its contents; type 'yes': ")
    if answer.strip().lower() != "yes":
        raise TargetRefusedError("restore not confirmed", "nothing was changed")


def _target(ctx: CliContext, kind: str) -> RestoreTarget | None:
    """The server to restore onto: --target NAME, or the --target-* options; None: the
    source's own server. Raises UsageError for a mix of both or an incomplete set."""
    args = ctx.args
    given = [name for name in ("host", "port", "user", "password_file")
             if getattr(args, f"target_{name}") is not None]
    if args.target is not None:
        if given:
            raise UsageError("--target and --target-* options exclude each other",
                             "name a [[restore_targets]] entry or give the server options")
        return ctx.config.restore_target(args.target)
    if not given:
        return None
    if args.target_host is None or args.target_user is None:
        raise UsageError("--target-host and --target-user are both needed for another server",
                         "or name a [[restore_targets]] entry with --target")
    if kind not in ("postgres", "mysql"):
        raise UsageError(f"a {kind} source is not restored onto a server",
                         "drop the --target-* options")
    try:
        return ad_hoc_target(kind, args.target_host, args.target_port, args.target_user,
                             args.target_password_file)
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise UsageError(f"--target-{problem['loc'][0]}: {problem['msg']}".replace("_", "-"),
                         "see 'drbackup restore-db --help'") from None


def restore_db_now(ctx: CliContext) -> int:
    agency = ctx.config.agency(ctx.args.agency)
    source = agency.source(ctx.args.source)
    into = ctx.args.into or ""
    refuse_secret_target(into)  # before the prompt echoes it
    target = _target(ctx, source.kind)
    if target is not None and target.password_file is not None:
        problem = check_secret_file("--target-password-file", target.password_file)
        if problem is not None:
            raise UsageError(str(problem), "give a readable file of mode 0600")
    if ctx.args.all_databases:
        return _restore_all_databases(ctx, agency, source, target)
    if target is None and not into:
        raise UsageError("--into is needed without a target server",
                         "name the database or file to restore into")
    selection = PartialSelection.of(ctx.args.schema, ctx.args.table)
    at = parse_at(ctx.args.at) if ctx.args.at else None
    if at is not None and ctx.args.snapshot != "latest":
        raise UsageError("--at and --snapshot exclude each other", "give one of them")
    _confirm(ctx)
    outcome = restore_database(ctx.runtime, agency, source, ctx.args.snapshot, into,
                               overwrite=ctx.args.overwrite, clean=ctx.args.clean,
                               database=ctx.args.database, store_name=ctx.args.store,
                               target=target, no_owner=ctx.args.no_owner,
                               no_privileges=ctx.args.no_privileges, at=at,
                               selection=selection or None)
    where = f" on {outcome.server}" if outcome.server else ""
    ctx.out.line(f"restored snapshot {outcome.snapshot.short_id} "
                 f"({outcome.snapshot.time:%Y-%m-%d %H:%M:%S %Z}) of {agency.id}/{source.id} "
                 f"into {outcome.into}{where}{' (created)' if outcome.created else ''}"
                 f"{f' (only {outcome.only})' if outcome.only else ''}: "
                 f"{human_bytes(outcome.bytes)} in {outcome.seconds:.1f}s")
    if outcome.properties and outcome.kind == "mysql":  # the users-and-grants snapshot
        ctx.out.line(f"users and grants: {outcome.properties} account(s) created")
    elif outcome.properties:
        ctx.out.line(f"the database's owner, settings and grants: {outcome.properties} "
                     "statement(s) of the dump applied")
    if outcome.moved_aside:
        ctx.out.line(f"the previous database was moved aside to {outcome.moved_aside[0]}"
                     + "".join(f", {path}" for path in outcome.moved_aside[1:]))
    ctx.out.result(outcome)
    return 0


def _restore_all_databases(ctx: CliContext, agency: AgencyConfig, source: Source,
                           target: RestoreTarget | None) -> int:
    """Render each database's result as it comes and the summary; exit: the first failure's."""
    args = ctx.args
    for flag, given in (("--into", args.into), ("--database", args.database),
                        ("--snapshot", args.snapshot != "latest"), ("--at", args.at),
                        ("--schema", args.schema), ("--table", args.table)):
        if given:
            raise UsageError(f"{flag} applies to one database, not to --all-databases",
                             "restore that database on its own with --database")
    if not isinstance(source, PostgresSource | MysqlSource):
        raise UsageError(f"--all-databases is for postgres and mysql sources, not {source.kind}",
                         "restore it with --into")
    _confirm(ctx)
    plan = plan_all_databases(ctx.runtime, agency, source, store_name=args.store)
    for problem in plan.refused:
        ctx.out.error(f"skipped: {problem}")
    where = f" on {target.describe()}" if target is not None else ""

    def show(result: DatabaseResult) -> None:
        if result.ok:
            ctx.out.line(f"database {result.database}: restored into {result.into}{where}"
                         f"{' (created)' if result.created else ''}: "
                         f"{human_bytes(result.bytes)} in {result.seconds:.1f}s")
        else:
            ctx.out.error(f"database {result.database}: {result.error}")
        ctx.out.result(result)

    outcome = restore_all_databases(
        ctx.runtime, agency, source, plan, target=target, overwrite=args.overwrite,
        clean=args.clean, no_owner=args.no_owner, no_privileges=args.no_privileges,
        store_name=args.store, on_result=show)
    failed = outcome.failed
    ctx.out.line(f"restored {len(outcome.results) - len(failed)} of {len(outcome.results)} "
                 f"database(s) of {agency.id}/{source.id}{where} in {outcome.seconds:.1f}s"
                 + (f"; failed: {', '.join(failed)}" if failed else ""))
    ctx.out.result({"event": "total", "agency": agency.id, "source": source.id,
                    "server": outcome.server, "databases": len(outcome.results),
                    "failed": failed, "seconds": round(outcome.seconds, 3)})
    return outcome.exit_code
