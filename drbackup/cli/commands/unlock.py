"""drbackup unlock [--agency A] [--store S]"""

from __future__ import annotations

from typing import Any

from drbackup.cli.context import CliContext


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "unlock", help="remove stale restic locks (from crashed runs); live locks are kept")
    parser.add_argument("--agency", help="only this agency (default: all)")
    parser.add_argument("--store", help="only this store (default: primary and replicas)")
    parser.set_defaults(handler=unlock_repos)


def unlock_repos(ctx: CliContext) -> int:
    """Plain `restic unlock` on each repository, through the job (recorded as 'unlock' runs)."""
    from drbackup.jobs.repository import unlock_repository

    done = []
    for agency in ctx.agencies(ctx.args.agency):
        stores = [ctx.args.store] if ctx.args.store else [agency.store, *agency.replicas]
        for store in stores:
            outcome = unlock_repository(ctx.runtime, agency, store)
            done.append({"agency": agency.id, "store": store, "run_id": outcome.run_id})
            ctx.out.line(f"{agency.id}@{store}: stale locks removed (live locks kept)")
    ctx.out.result(done)
    return 0
