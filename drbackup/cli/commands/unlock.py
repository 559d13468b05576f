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
    """Plain `restic unlock`: never --remove-all, which would break a job that is running."""
    rt = ctx.runtime
    rt.restic.require_supported()
    done = []
    for agency in ctx.agencies(ctx.args.agency):
        stores = [ctx.args.store] if ctx.args.store else [agency.store, *agency.replicas]
        for store in stores:
            rt.check_store(store)
            rt.restic.unlock(rt.target(agency, store))
            done.append({"agency": agency.id, "store": store})
            ctx.out.line(f"{agency.id}@{store}: stale locks removed (live locks kept)")
    ctx.out.result(done)
    return 0
