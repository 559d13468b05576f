"""drbackup snapshots [--agency A] [--source S]"""

from __future__ import annotations

from typing import Any

from drbackup.cli.context import CliContext
from drbackup.cli.output import human_bytes
from drbackup.jobs.restore import list_snapshots


def register(commands: Any) -> None:
    parser = commands.add_parser("snapshots", help="list snapshots")
    parser.add_argument("--agency", help="only this agency (default: all)")
    parser.add_argument("--source", help="only this source")
    parser.add_argument("--store", help="read this store (e.g. a replica) instead of the primary")
    parser.set_defaults(handler=show_snapshots)


def show_snapshots(ctx: CliContext) -> int:
    rows: list[list[str]] = []
    found: list[dict[str, object]] = []
    for agency in ctx.agencies(ctx.args.agency):
        for snap in list_snapshots(ctx.runtime, agency, ctx.args.source,
                                   store_name=ctx.args.store, fresh=True):
            size = snap.summary.total_bytes_processed if snap.summary else None
            found.append({"agency": agency.id, "source": snap.tag("source"), "id": snap.id,
                          "time": snap.time, "host": snap.hostname, "paths": snap.paths,
                          "tags": snap.tags, "bytes": size})
            rows.append([snap.short_id, snap.time.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                         agency.id, snap.tag("source") or "-", snap.hostname,
                         human_bytes(size) if size is not None else "-", ", ".join(snap.paths)])
    if ctx.out.json_mode:
        ctx.out.result(found)
    else:
        ctx.out.table(["ID", "TIME", "AGENCY", "SOURCE", "HOST", "SIZE", "PATHS"], rows)
        ctx.out.line(f"{len(rows)} snapshot(s)")
    return 0
