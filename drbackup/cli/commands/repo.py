"""drbackup repo init"""

from __future__ import annotations

import argparse
from typing import Any

from drbackup.cli.context import CliContext
from drbackup.cli.output import human_bytes
from drbackup.jobs.repository import init_repository
from drbackup.jobs.stats import record_repository_stats


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser("repo", help="manage repositories")
    verbs = parser.add_subparsers(dest="repo_command", metavar="ACTION")
    verbs.required = True
    init = verbs.add_parser("init", help="create agency repositories (idempotent)")
    init.add_argument("--agency", help="only this agency (default: all)")
    init.add_argument("--store", help="only this store (default: primary and replicas)")
    init.set_defaults(handler=init_repos)
    stats = verbs.add_parser(
        "stats", help="count snapshots and measure repository size into state (for metrics)")
    stats.add_argument("--agency", help="only this agency (default: all)")
    stats.add_argument("--store", help="only this store (default: primary and replicas)")
    stats.set_defaults(handler=repo_stats)


def init_repos(ctx: CliContext) -> int:
    outcomes = []
    for agency in ctx.agencies(ctx.args.agency):
        stores = [ctx.args.store] if ctx.args.store else [agency.store, *agency.replicas]
        for store in stores:
            outcome = init_repository(ctx.runtime, agency, store)
            outcomes.append(outcome)
            state = "created" if outcome.created else "already exists"
            ctx.out.line(f"{agency.id}@{store}: repository {state} ({outcome.url})")
    ctx.out.result(outcomes)
    return 0


def repo_stats(ctx: CliContext) -> int:
    outcomes = []
    for agency in ctx.agencies(ctx.args.agency):
        stores = [ctx.args.store] if ctx.args.store else [agency.store, *agency.replicas]
        for store in stores:
            outcome = record_repository_stats(ctx.runtime, agency, store)
            outcomes.append(outcome)
            ctx.out.line(f"{agency.id}@{store}: {outcome.snapshots} snapshot(s), "
                         f"{human_bytes(outcome.repository_size_bytes)} stored")
    ctx.out.result(outcomes)
    return 0
