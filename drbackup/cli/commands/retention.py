"""drbackup forget --agency A [--dry-run] [--store S]; drbackup prune --agency A [--store S]"""

from __future__ import annotations

from typing import Any

from drbackup.cli.context import CliContext
from drbackup.jobs.retention import run_prune, run_retention


def register(commands: Any) -> None:
    forget = commands.add_parser(
        "forget", help="apply the agency's retention policy (maintenance credentials)")
    forget.add_argument("--agency", required=True)
    forget.add_argument("--store", help="this store's repository (default: the primary)")
    forget.add_argument("--dry-run", action="store_true",
                        help="only show which snapshots would go and why the others stay")
    forget.set_defaults(handler=forget_cmd)
    prune = commands.add_parser(
        "prune", help="remove data no snapshot references (maintenance credentials)")
    prune.add_argument("--agency", required=True)
    prune.add_argument("--store", help="this store's repository (default: the primary)")
    prune.set_defaults(handler=prune_cmd)


def forget_cmd(ctx: CliContext) -> int:
    agency = ctx.config.agency(ctx.args.agency)
    outcome = run_retention(ctx.runtime, agency, dry_run=ctx.args.dry_run,
                            store_name=ctx.args.store)
    plan = outcome.plan
    verb = "would remove" if outcome.dry_run else "removed"
    ctx.out.line(f"{agency.id}@{plan.store}: keep {len(plan.keep)}, {verb} {len(plan.remove)}")
    rows = [[s.id[:8], s.time.isoformat(timespec="seconds"), "keep", "; ".join(s.reasons)]
            for s in plan.keep]
    rows += [[s.id[:8], s.time.isoformat(timespec="seconds"),
              "REMOVE" if outcome.dry_run else "removed", "matches no keep rule"]
             for s in plan.remove]
    rows.sort(key=lambda r: r[1])
    ctx.out.table(["ID", "TIME", "ACTION", "WHY"], rows)
    ctx.out.result({"agency": agency.id, "store": plan.store, "dry_run": outcome.dry_run,
                    "keep": plan.keep, "remove": plan.remove, "removed": outcome.removed,
                    "run_id": outcome.run_id})
    return 0


def prune_cmd(ctx: CliContext) -> int:
    agency = ctx.config.agency(ctx.args.agency)
    outcome = run_prune(ctx.runtime, agency, store_name=ctx.args.store)
    ctx.out.line(f"{agency.id}@{outcome.store}: prune done in {outcome.seconds:.1f}s")
    ctx.out.result(outcome)
    return 0
