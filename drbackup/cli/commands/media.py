"""drbackup media export|verify|import|list — offline copies on removable media (#19)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from drbackup.cli.context import CliContext
from drbackup.cli.output import human_bytes
from drbackup.config import Config
from drbackup.errors import DrBackupError, ExitCode, UsageError
from drbackup.jobs.media_common import require_trusted, trusted_key
from drbackup.jobs.media_export import export_media
from drbackup.jobs.media_import import import_media
from drbackup.jobs.media_verify import inspect_medium
from drbackup.state.media import VERIFIED, media, set_location


def register(commands: Any) -> None:
    parser = commands.add_parser("media", help="offline copies on removable media: export, "
                                               "verify, import, list")
    verbs = parser.add_subparsers(dest="media_verb", required=True, metavar="ACTION")
    export = verbs.add_parser("export", help="write the agency's snapshots to a mounted medium, "
                                             "read them back, sign the manifest")
    who = export.add_mutually_exclusive_group(required=True)
    who.add_argument("--agency")
    who.add_argument("--all-agencies", action="store_true")
    export.add_argument("--to", required=True, metavar="DIR", help="the medium's mount point")
    export.add_argument("--label", help="the medium's name (written on it); needed when blank")
    export.add_argument("--location", help="where the medium will be kept (catalogue)")
    export.set_defaults(handler=export_cmd)
    verify = verbs.add_parser("verify", help="check a medium: signature, every file, replay; "
                                             "restic check where the password is known")
    verify.add_argument("medium", metavar="DIR")
    verify.add_argument("--public-key", type=Path, metavar="PEM",
                        help="the exporting host's evidence public key")
    verify.add_argument("--no-restic-check", action="store_true",
                        help="skip restic check even where a password is configured")
    verify.set_defaults(handler=verify_cmd)
    imp = verbs.add_parser("import", help="verify a medium, then copy its snapshots into the "
                                          "agency's repository in a store")
    imp.add_argument("medium", metavar="DIR")
    imp.add_argument("--agency", required=True)
    imp.add_argument("--into", metavar="STORE", help="destination store (default: the agency's)")
    imp.add_argument("--public-key", type=Path, metavar="PEM")
    imp.set_defaults(handler=import_cmd)
    listing = verbs.add_parser("list", help="the media catalogue of this host")
    listing.add_argument("--agency")
    listing.add_argument("--set-location", nargs=2, metavar=("LABEL", "WHERE"),
                         help="record where a medium is kept")
    listing.set_defaults(handler=list_cmd)


def export_cmd(ctx: CliContext) -> int:
    agencies = list(ctx.config.agencies) if ctx.args.all_agencies else [
        ctx.config.agency(ctx.args.agency)]
    outcome = export_media(ctx.runtime, agencies, Path(ctx.args.to), label=ctx.args.label,
                           location=ctx.args.location)
    for export in outcome.agencies:
        ctx.out.line(f"{export.agency}: {len(export.new_snapshots)} new snapshot(s), "
                     f"{len(export.snapshots)} on medium {outcome.label}, sequence "
                     f"{export.sequence}")
    ctx.out.line(f"medium {outcome.label}: {outcome.files_written} file(s) written "
                 f"({human_bytes(outcome.bytes_written)}), {outcome.files_total} in all "
                 f"({human_bytes(outcome.bytes_total)}), read back and verified "
                 f"(restic check {outcome.check}) in {outcome.seconds:.1f}s")
    for note in outcome.notes:
        ctx.out.line(f"warning: {note}")
    ctx.out.result(outcome)
    return 0


def _optional_config(ctx: CliContext) -> Config | None:
    """The config when there is one: the transfer station has none."""
    try:
        return ctx.config
    except DrBackupError:
        if ctx.args.config:
            raise
        return None


def verify_cmd(ctx: CliContext) -> int:
    config = _optional_config(ctx)
    agencies = {a.id: a for a in config.agencies} if config else {}
    key_file = ctx.args.public_key or next(
        (a.offline.public_key for a in agencies.values() if a.offline and a.offline.public_key),
        None)
    trusted = require_trusted(trusted_key(key_file, config.daemon.state_dir if config else None))
    inspection = inspect_medium(
        Path(ctx.args.medium), trusted, state=ctx.runtime.state if config else None,
        agencies=agencies, restic=None if (config is None or ctx.args.no_restic_check)
        else ctx.runtime.restic)
    manifest = inspection.manifest
    for problem in inspection.problems:
        ctx.out.error(problem)
    ctx.out.line(f"medium {manifest.label} from {manifest.host} (key {manifest.key_id}), "
                 f"{len(manifest.files)} file(s), {human_bytes(manifest.total_bytes)}: "
                 + ("verified" if inspection.ok else f"{len(inspection.problems)} problem(s)"))
    for agency, entry in sorted(manifest.agencies.items()):
        checked = " (restic check passed)" if agency in inspection.restic_checked else ""
        ctx.out.line(f"  {agency}: sequence {entry.sequence}, {len(entry.snapshots)} "
                     f"snapshot(s){checked}")
    ctx.out.result({"medium": inspection.medium, "label": manifest.label,
                    "host": manifest.host, "key_id": manifest.key_id, "ok": inspection.ok,
                    "problems": inspection.problems, "restic_checked": inspection.restic_checked,
                    "agencies": {a: {"sequence": e.sequence,
                                     "snapshots": [s.id for s in e.snapshots]}
                                 for a, e in manifest.agencies.items()}})
    return 0 if inspection.ok else int(ExitCode.MEDIA_INVALID)


def import_cmd(ctx: CliContext) -> int:
    agency = ctx.config.agency(ctx.args.agency)
    key_file = ctx.args.public_key or (agency.offline.public_key if agency.offline else None)
    if key_file is None:
        raise UsageError(f"no trusted key for media of agency {agency.id}",
                         "pass --public-key EXPORTING_HOST.pub.pem or set "
                         "[agencies.offline] public_key")
    trusted = require_trusted(trusted_key(key_file, None))
    outcome = import_media(ctx.runtime, agency, Path(ctx.args.medium), trusted,
                           store=ctx.args.into)
    ctx.out.line(f"{outcome.agency}: medium {outcome.label} (sequence {outcome.sequence}) "
                 f"imported into {outcome.store}: {len(outcome.copied)} new snapshot(s), "
                 f"{outcome.store_snapshots} in the store, {outcome.reports} report(s), "
                 f"{outcome.seconds:.1f}s")
    ctx.out.result(outcome)
    return 0


def _age(since: float | None) -> str:
    if since is None:
        return "-"
    hours = (time.time() - since) / 3600
    return f"{hours:.1f}h" if hours < 48 else f"{hours / 24:.1f}d"


def list_cmd(ctx: CliContext) -> int:
    state = ctx.runtime.state
    if ctx.args.set_location:
        label, where = ctx.args.set_location
        if not set_location(state, label, where):
            raise UsageError(f"no medium labelled {label!r} in the catalogue",
                             "see 'drbackup media list'")
    records = media(state, ctx.args.agency)
    ctx.out.table(["LABEL", "AGENCY", "SEQ", "STATE", "SNAPSHOTS", "NEWEST", "VERIFIED",
                   "LOCATION"],
                  [[r.label, r.agency, str(r.sequence), r.state, str(len(r.snapshots)),
                    _age(r.newest_snapshot_time), _age(r.verified_at), r.location or "-"]
                   for r in records])
    for agency in ctx.config.agencies:
        if agency.offline is None:
            continue
        verified = [r for r in records if r.agency == agency.id and r.state == VERIFIED]
        if ctx.args.agency in (None, agency.id) and len(verified) < agency.offline.media_set:
            ctx.out.line(f"{agency.id}: {len(verified)} verified medium/media, the rotation set "
                         f"is {agency.offline.media_set}")
    ctx.out.result(records)
    return 0
