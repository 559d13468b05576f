"""`restore`, `ls`, `snapshots --from-media DIR` (#19 §4): the bad day when the medium is all that
is left. The medium is checked first (drbackup/media/opened.py says how much, and why that
much), then the runtime reads the agency's repository on it instead of any store, with restic's
--no-lock so a medium mounted read-only (or behind a one-way import device) is enough."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from drbackup.config.models import AgencyConfig
from drbackup.jobs.media_common import medium_root, trusted_key
from drbackup.jobs.runtime import Runtime
from drbackup.media.errors import MediaIncompleteError, MediaInvalidError
from drbackup.media.layout import INCOMPLETE
from drbackup.media.manifest import read_manifest
from drbackup.media.opened import OpenedMedium, agency_problems

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MediumOpening:
    medium: OpenedMedium
    agencies: list[str]  # the configured agencies whose parts were checked
    key_source: str | None  # where the trusted key came from; None: signature not checked

    @property
    def warning(self) -> str | None:
        if self.key_source is not None:
            return None
        return (f"medium {self.medium.label}: its signature was NOT checked (no key known on "
                "this host): pass --public-key EXPORTING_HOST.pub.pem, or set [agencies.offline]"
                " public_key (a host opened from a recovery kit has it)")


def _key_file(agencies: list[AgencyConfig], public_key: Path | None) -> tuple[Path | None, str]:
    if public_key is not None:
        return public_key, "--public-key"
    for agency in agencies:
        if agency.offline is not None and agency.offline.public_key is not None:
            return agency.offline.public_key, f"[agencies.offline] public_key of {agency.id}"
    return None, "this host's evidence key"


def open_medium(rt: Runtime, medium_path: Path, agencies: list[AgencyConfig], *,
                public_key: Path | None = None, only_present: bool = False) -> MediumOpening:
    """Check the medium for these agencies and make `rt` read it instead of the stores.

    The key: `public_key`, else an agency's [agencies.offline] public_key, else this host's own
    evidence key; with none, the signature is not checked (MediumOpening.warning says so).
    `only_present` skips the agencies the medium holds no copy of (`snapshots` of all).

    Raises MediaIncompleteError (27) for a medium whose export did not finish, MediaInvalidError
    (26) for a manifest that is malformed, unsigned or signed by another key than the trusted
    one, a part of the medium that differs from it, or an agency it holds no copy of."""
    medium = medium_root(medium_path)
    key_file, source = _key_file(agencies, public_key)
    trusted = trusted_key(key_file, rt.config.daemon.state_dir)
    manifest = read_manifest(medium, trusted)
    if (medium / INCOMPLETE).exists():
        raise MediaIncompleteError(
            f"{medium}: medium {manifest.label} is incomplete (an export to it started and did "
            "not finish)", "restore from another medium, or complete this one with 'drbackup "
            "media export' on the exporting host")
    wanted = [a for a in agencies if a.id in manifest.agencies] if only_present else agencies
    missing = [a.id for a in wanted if a.id not in manifest.agencies]
    if missing or not wanted:
        what = f"agency {', '.join(missing)}" if missing else "any agency of this config"
        raise MediaInvalidError(
            f"medium {manifest.label} holds no copy of {what} (it holds "
            f"{', '.join(sorted(manifest.agencies))})",
            "take the agency's medium ('drbackup media list' on the exporting host says which)")
    opened = OpenedMedium(medium, manifest, manifest.key_id if trusted is not None else None)
    for agency in wanted:
        problems = agency_problems(manifest, medium, agency.id)
        if problems:
            more = len(problems) - 1
            raise MediaInvalidError(
                f"medium {manifest.label} refused: {problems[0].line()}"
                + (f" (and {more} more problem(s))" if more else ""),
                "nothing was read from it; 'drbackup media verify' lists every problem; take "
                "another medium")
        opened.agencies.add(agency.id)
    rt.medium = opened
    log.info("reading medium %s (%s) instead of the stores", manifest.label, medium)
    return MediumOpening(opened, [a.id for a in wanted], source if trusted is not None else None)
