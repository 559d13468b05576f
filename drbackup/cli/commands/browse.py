"""drbackup ls --agency A --source S [--snapshot ID] [--from-media DIR] [PATH...]
drbackup find --agency A [--source S] PATTERN...   (a lost file, across all snapshots)"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from drbackup.cli import medium as media_option
from drbackup.cli.context import CliContext
from drbackup.cli.output import human_bytes
from drbackup.engine import FindHit
from drbackup.jobs.restore import (
    find_files,
    list_files,
    list_snapshots,
    parse_at,
    pick_snapshot,
    source_snapshots,
)


def register(commands: Any) -> None:
    ls = commands.add_parser("ls", help="list the files in a snapshot")
    ls.add_argument("--agency", required=True)
    ls.add_argument("--source", required=True)
    ls.add_argument("--snapshot", default="latest", help="snapshot id or 'latest'")
    ls.add_argument("--at", metavar="TIME", help="newest snapshot at or before TIME")
    ls.add_argument("--store", help="read this store (e.g. a replica) instead of the primary")
    media_option.add_arguments(ls)
    ls.add_argument("path", nargs="*", help="list only below these paths")
    ls.set_defaults(handler=list_now)

    find = commands.add_parser("find", help="find files by name pattern in all snapshots")
    find.add_argument("--agency", required=True)
    find.add_argument("--source", help="only this source's snapshots")
    find.add_argument("--store", help="search this store instead of the primary")
    find.add_argument("--ignore-case", "-i", action="store_true")
    find.add_argument("pattern", nargs="+",
                      help="glob on the name or path, e.g. '*.docx' or '/srv/data/report*'")
    find.set_defaults(handler=find_now)


def list_now(ctx: CliContext) -> int:
    agency = ctx.config.agency(ctx.args.agency)
    store = media_option.open_if_asked(ctx, [agency]) or ctx.args.store
    snapshots = source_snapshots(ctx.runtime, agency, ctx.args.source, store_name=store)
    at = parse_at(ctx.args.at) if ctx.args.at else None
    snapshot = pick_snapshot(snapshots, ctx.args.snapshot, at=at)
    nodes = list_files(ctx.runtime, agency, snapshot, tuple(ctx.args.path), store_name=store)
    if ctx.out.json_mode:
        ctx.out.result({"snapshot_id": snapshot.id, "time": snapshot.time, "entries": nodes})
        return 0
    ctx.out.line(f"snapshot {snapshot.id} ({snapshot.time.astimezone():%Y-%m-%d %H:%M:%S %Z})")
    rows = [[n.type, human_bytes(n.size) if n.type == "file" else "-",
             n.mtime.astimezone().strftime("%Y-%m-%d %H:%M") if n.mtime else "-", n.path]
            for n in nodes]
    ctx.out.table(["TYPE", "SIZE", "MODIFIED", "PATH"], rows)
    ctx.out.line(f"{len(nodes)} entries")
    return 0


def find_now(ctx: CliContext) -> int:
    agency = ctx.config.agency(ctx.args.agency)
    listed = (source_snapshots(ctx.runtime, agency, ctx.args.source, store_name=ctx.args.store)
              if ctx.args.source else
              list_snapshots(ctx.runtime, agency, store_name=ctx.args.store))
    snapshots = {s.id: s for s in listed}
    hits = find_files(ctx.runtime, agency, tuple(ctx.args.pattern), source_id=ctx.args.source,
                      store_name=ctx.args.store, ignore_case=ctx.args.ignore_case)
    found = []
    rows = []
    def order(hit: FindHit) -> tuple[datetime, str]:
        snap = snapshots.get(hit.snapshot_id)
        return (snap.time if snap else datetime.min.replace(tzinfo=UTC), hit.path)

    for hit in sorted(hits, key=order):
        snap = snapshots.get(hit.snapshot_id)
        source = snap.tag("source") if snap else None
        found.append({"snapshot_id": hit.snapshot_id, "snapshot_time": snap.time if snap else None,
                      "source": source, "path": hit.path, "type": hit.type, "size": hit.size,
                      "mtime": hit.mtime})
        rows.append([hit.snapshot_id[:8],
                     snap.time.astimezone().strftime("%Y-%m-%d %H:%M:%S") if snap else "-",
                     source or "-", human_bytes(hit.size) if hit.type == "file" else "-",
                     hit.path])
    if ctx.out.json_mode:
        ctx.out.result(found)
        return 0
    ctx.out.table(["SNAPSHOT", "TIME", "SOURCE", "SIZE", "PATH"], rows)
    ctx.out.line(f"{len(rows)} match(es) in {len({h.snapshot_id for h in hits})} snapshot(s)")
    return 0
