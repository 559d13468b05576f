"""drbackup media verify: is this medium what its manifest says, signed by the trusted key, not
a replay? Runs without the repositories' passwords (the transfer station); with an agency's
password (its config on this host), restic's own check of that agency's repository too."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from drbackup.config.models import AgencyConfig
from drbackup.engine import Restic
from drbackup.jobs.media_common import medium_root, medium_target
from drbackup.media.errors import MediaIncompleteError, MediaInvalidError
from drbackup.media.layout import INCOMPLETE
from drbackup.media.manifest import Manifest, read_manifest
from drbackup.media.readback import compare
from drbackup.state import StateDB
from drbackup.state.media import highest_imported


@dataclass(frozen=True)
class Inspection:
    medium: str
    manifest: Manifest
    problems: list[str]
    restic_checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def inspect_medium(medium_path: Path, trusted: Ed25519PublicKey, *, state: StateDB | None,
                   agencies: dict[str, AgencyConfig], restic: Restic | None,
                   cold: bool = True) -> Inspection:
    """Check the manifest's signature, every file against it, the sequence numbers against the
    imports recorded in `state`, and (restic given) each configured agency's repository.

    Raises MediaIncompleteError for an export that did not finish, MediaInvalidError when the
    manifest itself cannot be trusted; the medium's other faults are in `problems`."""
    medium = medium_root(medium_path)
    manifest = read_manifest(medium, trusted)
    if (medium / INCOMPLETE).exists():
        raise MediaIncompleteError(
            f"{medium}: an export to medium {manifest.label} started and did not finish",
            "plug it into the exporting host and run 'drbackup media export' again")
    problems = [p.line() for p in compare(manifest, medium, cold=cold)]
    if state is not None:
        for agency, entry in sorted(manifest.agencies.items()):
            seen = highest_imported(state, agency, manifest.key_id, manifest.destination)
            if entry.sequence <= seen:
                problems.append(
                    f"agency {agency}: sequence {entry.sequence} of medium {manifest.label} is "
                    f"not newer than the {seen} already imported: a replayed or older medium")
    checked: list[str] = []
    if restic is not None and not problems:
        for agency_id in sorted(set(manifest.agencies) & set(agencies)):
            result = restic.check(medium_target(medium, agencies[agency_id], manifest.label,
                                                read_only=True), read_data=True)
            checked.append(agency_id)
            if not result.ok:
                problems.append(f"agency {agency_id}: restic check of the medium's repository "
                                f"failed: {'; '.join(result.errors[:3]) or 'errors found'}")
    return Inspection(str(medium), manifest, problems, checked)


def require_clean(inspection: Inspection) -> None:
    """Raises MediaInvalidError naming the first problem (and how many there are)."""
    if inspection.problems:
        more = len(inspection.problems) - 1
        raise MediaInvalidError(
            f"medium {inspection.manifest.label} refused: {inspection.problems[0]}"
            + (f" (and {more} more problem(s))" if more else ""),
            "nothing was imported; run 'drbackup media verify' for every line, and take "
            "another medium")
