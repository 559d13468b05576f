"""drbackup maintenance show [--agency A] [--store S]; drbackup maintenance claim --agency A
[--store S] [--take-over]: which host does an agency's forget, prune and check
(docs/multi-host.md)."""

from __future__ import annotations

import argparse
from typing import Any

from drbackup.cli.context import CliContext


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "maintenance", help="which host does an agency's forget, prune and check")
    verbs = parser.add_subparsers(dest="maintenance_command", metavar="ACTION")
    verbs.required = True
    show = verbs.add_parser(
        "show", help="the maintenance host by this host's config and by the repository's claims")
    show.add_argument("--agency", help="only this agency (default: all)")
    show.add_argument("--store", help="read this store's repository (default: the primary)")
    show.set_defaults(handler=show_owner)
    claim = verbs.add_parser(
        "claim", help="record this host as the maintenance host in the repository (its config "
                      "must name it); --take-over displaces the host recorded there")
    claim.add_argument("--agency", required=True)
    claim.add_argument("--store", help="this store's repository (default: the primary)")
    claim.add_argument("--take-over", action="store_true",
                       help="the host recorded now no longer does maintenance: take it over")
    claim.set_defaults(handler=claim_owner)


def show_owner(ctx: CliContext) -> int:
    from drbackup.jobs.maintenance import maintenance_host, repository_ownership

    rt = ctx.runtime
    found = []
    rows: list[list[str]] = []
    for agency in ctx.agencies(ctx.args.agency):
        rt.restic.require_supported()
        rt.check_store(ctx.args.store or agency.store)
        ownership = repository_ownership(rt, agency, ctx.args.store, fresh=True)
        configured = maintenance_host(rt, agency)
        here = rt.config.owns_maintenance(agency) and ownership.owner in (None, rt.hostname)
        found.append({**ownership.to_json(), "configured": configured,
                      "configured_explicitly": agency.maintenance_host is not None,
                      "this_host": rt.hostname, "maintains_here": here})
        claim = ownership.deciding
        rows.append([agency.id, ownership.store,
                     configured + ("" if agency.maintenance_host else " (unset: this host)"),
                     ownership.owner or "-",
                     f"{claim.short_id} {claim.time.isoformat(timespec='seconds')}"
                     if claim else "-", "yes" if here else "no"])
        for rival in ownership.rivals:
            ctx.out.line(f"{agency.id}: host {rival.host} claimed it too (claim "
                         f"{rival.short_id}): refused")
    ctx.out.table(["AGENCY", "STORE", "CONFIGURED", "REPOSITORY SAYS", "CLAIM",
                   "MAINTAINED HERE"], rows)
    ctx.out.result(found)
    return 0


def claim_owner(ctx: CliContext) -> int:
    from drbackup.jobs.maintenance import claim_maintenance

    agency = ctx.config.agency(ctx.args.agency)
    outcome = claim_maintenance(ctx.runtime, agency, ctx.args.store,
                                take_over=ctx.args.take_over)
    store = outcome.ownership.store
    if outcome.written is None:
        ctx.out.line(f"{agency.id}@{store}: this host ({outcome.ownership.owner}) is already "
                     "the maintenance host")
    else:
        took = f", taking over from {outcome.took_over_from}" if outcome.took_over_from else ""
        ctx.out.line(f"{agency.id}@{store}: claimed by this host ({outcome.ownership.owner}) "
                     f"in snapshot {outcome.written[:8]}{took}")
    ctx.out.result({**outcome.ownership.to_json(), "written": outcome.written,
                    "took_over_from": outcome.took_over_from})
    return 0
