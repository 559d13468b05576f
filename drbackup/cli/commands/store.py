"""drbackup store bootstrap --store NAME [--require-lock]; drbackup store check [--store NAME]"""

from __future__ import annotations

import argparse
from typing import Any

from drbackup.cli.context import CliContext
from drbackup.errors import ConfigError, ExitCode
from drbackup.jobs.store_health import check_all_stores, check_store_health
from drbackup.store import StoreFeatureMissing


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "store", help="prepare and check S3 stores (versioning, Object Lock, health)")
    verbs = parser.add_subparsers(dest="store_command", metavar="ACTION")
    verbs.required = True
    boot = verbs.add_parser(
        "bootstrap", help="create or check a bucket: versioning, Object Lock default retention, "
                          "lifecycle, public access block; read back and report")
    boot.add_argument("--store", required=True)
    boot.add_argument("--require-lock", action="store_true",
                      help="fail unless Object Lock with the configured retention is in place")
    boot.set_defaults(handler=bootstrap)
    check = verbs.add_parser("check", help="reach each store and record its health in state")
    check.add_argument("--store", help="only this store (default: all)")
    check.set_defaults(handler=check_stores)


def bootstrap(ctx: CliContext) -> int:
    name = ctx.args.store
    config = ctx.config.store(name)
    if config.url is None:
        raise ConfigError(f"store {name!r} is a local directory; bootstrap is for S3 stores",
                          "local stores need no bucket settings")
    if ctx.args.require_lock and config.lock_mode is None:
        raise ConfigError(f"--require-lock, but store {name!r} sets no lock_mode",
                          'set lock_mode = "governance" or "compliance" and lock_days')
    # Bucket settings need the privileged key: the maintenance one when there is one.
    s3 = ctx.runtime.s3_store(name, maintenance=True)
    assert s3 is not None
    from drbackup.store.bootstrap import bootstrap_bucket

    report = bootstrap_bucket(s3, lock_mode=config.lock_mode, lock_days=config.lock_days,
                              create=config.create_bucket)
    ctx.out.line(f"store {name}: bucket {report.bucket} at {report.endpoint}"
                 f"{' (created now)' if report.bucket_created else ''}")
    for feature in report.features:
        ctx.out.line(f"  {feature.name:<20} {feature.status:<8} {feature.detail}")
        if feature.status == "missing":
            ctx.out.line(f"  {'':<20} you give up: {feature.gives_up}")
    ctx.out.result(report)
    missing = report.missing
    lock_missing = any(f.name == "object_lock" for f in missing)
    if ctx.args.require_lock and lock_missing:
        detail = report.feature("object_lock").detail
        raise StoreFeatureMissing(
            f"store {name!r} lacks Object Lock ({detail}): --require-lock refuses it",
            "use a server or bucket with Object Lock, or drop --require-lock and accept that "
            + report.feature("object_lock").gives_up)
    if missing:
        ctx.out.line(f"warning: {len(missing)} feature(s) missing: "
                     + ", ".join(f.name for f in missing))
    return 0


def check_stores(ctx: CliContext) -> int:
    rt = ctx.runtime
    records = [check_store_health(rt, ctx.args.store)] if ctx.args.store else (
        check_all_stores(rt))
    ctx.out.table(["STORE", "KIND", "UP", "LATENCY", "ERROR"], [
        [r.store, r.kind, "yes" if r.up else "NO",
         f"{r.latency_seconds * 1000:.0f} ms" if r.latency_seconds is not None else "-",
         r.error or ""] for r in records])
    ctx.out.result(records)
    down = [r for r in records if not r.up]
    if down:
        return down[0].exit_code or int(ExitCode.STORE_UNREACHABLE)
    return 0
