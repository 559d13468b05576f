"""`--from-media DIR` of restore, ls and snapshots (#19 §4): the options, and opening the medium
before the verb runs (the runtime then reads the medium instead of any store)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from drbackup.cli.context import CliContext
from drbackup.config.models import AgencyConfig
from drbackup.errors import UsageError


def add_arguments(parser: Any) -> None:
    parser.add_argument("--from-media", type=Path, metavar="DIR",
                        help="read the agency's repository on this mounted offline medium "
                             "instead of any store (checked first; read-only is fine)")
    parser.add_argument("--public-key", type=Path, metavar="PEM",
                        help="with --from-media: the exporting host's evidence public key "
                             "(default: [agencies.offline] public_key, else this host's key)")


def open_if_asked(ctx: CliContext, agencies: list[AgencyConfig], *,
                  only_present: bool = False) -> str | None:
    """With --from-media: check the medium, switch the runtime to it, say so; returns the name
    the jobs record as the store ("media:LABEL", as media export does). None without
    --from-media.

    Raises UsageError when combined with --store/--from-replica, and open_medium's errors."""
    args = ctx.args
    if args.from_media is None:
        if args.public_key is not None:
            raise UsageError("--public-key goes with --from-media", "add --from-media DIR")
        return None
    for flag in ("store", "from_replica"):
        if getattr(args, flag, None):
            raise UsageError(f"--from-media and --{flag.replace('_', '-')} exclude each other",
                             "a restore reads one place: give one of them")
    from drbackup.jobs.media_read import open_medium  # cryptography only with --from-media

    opening = open_medium(ctx.runtime, args.from_media, agencies, public_key=args.public_key,
                          only_present=only_present)
    medium = opening.medium
    if opening.warning:
        ctx.out.warning(opening.warning)
    if not ctx.out.json_mode:
        signed = (f"signed by {medium.manifest.host} (key {medium.signed_by}, "
                  f"from {opening.key_source})" if medium.signed_by else "signature not checked")
        ctx.out.line(f"medium {medium.label} at {medium.root}: exported "
                     f"{_when(medium.manifest.exported_at)}, {signed}; "
                     f"agencies {', '.join(opening.agencies)} checked against its manifest")
    return medium.store_name


def _when(timestamp: float) -> str:
    return f"{datetime.fromtimestamp(timestamp).astimezone():%Y-%m-%d %H:%M %Z}"


def where(store: str) -> str:
    """How a message names what a job read: "store NAME", or "medium LABEL"."""
    return f"medium {store[6:]}" if store.startswith("media:") else f"store {store}"
