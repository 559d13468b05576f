"""drbackup replicate --agency A [--replica R] [--status]"""

from __future__ import annotations

import time
from typing import Any

from drbackup.cli.context import CliContext
from drbackup.jobs.replicate import measure_replication, replica_names, run_replication


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "replicate", help="copy new snapshots to the agency's replica stores (restic copy)")
    parser.add_argument("--agency", required=True)
    parser.add_argument("--replica", help="only this replica store (default: all)")
    parser.add_argument("--status", action="store_true",
                        help="only measure what each replica lacks and its lag; copy nothing")
    parser.set_defaults(handler=replicate)


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def replicate(ctx: CliContext) -> int:
    agency = ctx.config.agency(ctx.args.agency)
    replicas = replica_names(agency, ctx.args.replica)
    if not replicas:
        ctx.out.line(f"agency {agency.id} has no replicas (set 'replicas' in its config)")
        ctx.out.result([])
        return 0
    results: list[Any] = []
    for replica in replicas:
        if ctx.args.status:
            status = measure_replication(ctx.runtime, agency, replica)
            results.append({"agency": agency.id, "replica": replica,
                            "uncopied": status.uncopied, "lag_seconds": status.lag_seconds,
                            "measured_at": status.measured_at,
                            "oldest_uncopied_time": status.oldest_uncopied_time,
                            "primary_snapshots": status.primary_snapshots,
                            "replica_snapshots": status.replica_snapshots})
            ctx.out.line(f"{agency.id} -> {replica}: {len(status.uncopied)} snapshot(s) not yet "
                         f"copied, lag {_age(status.lag_seconds)}")
            continue
        started = time.monotonic()
        outcome = run_replication(ctx.runtime, agency, replica)
        for note in outcome.notes:
            ctx.out.line(f"{agency.id} -> {replica}: {note}")
        ctx.out.line(f"{agency.id} -> {replica}: {len(outcome.copied)} snapshot(s) copied, "
                     f"replica holds {outcome.status.replica_snapshots}, lag "
                     f"{_age(outcome.lag_seconds)} ({time.monotonic() - started:.1f}s)")
        results.append({"agency": agency.id, "replica": replica, "copied": outcome.copied,
                        "initialized": outcome.initialized, "lag_seconds": outcome.lag_seconds,
                        "replica_snapshots": outcome.status.replica_snapshots,
                        "primary_snapshots": outcome.status.primary_snapshots,
                        "run_id": outcome.run_id})
    ctx.out.result(results)
    return 0
