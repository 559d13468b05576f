"""A medium opened for reading (`restore`, `ls`, `snapshots --from-media`, #19 §4): which agencies'
parts of it were checked against its manifest, and whether the manifest's signature was.

Checking a part is cheap on purpose, for the bad day: every file's name and size against the
manifest (nothing missing, extra or resized) and the SHA-256 of every file that is not a pack
(config, keys, index, snapshots: small). The packs are not hashed here: each of their blobs is
named by its own hash and sealed by restic's MAC, and restic checks both as it reads them, so a
pack altered on the medium fails the restore of what it holds; a snapshot file, whose name is
its content's hash and which the manifest lists, cannot be added, dropped or swapped unseen.
`drbackup media verify` reads everything when there is time for it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from drbackup.media.errors import MediaInvalidError
from drbackup.media.layout import AGENCIES, REPO
from drbackup.media.manifest import Manifest
from drbackup.media.readback import Problem, compare

_HEX = frozenset("0123456789abcdef")


def _is_pack(relative: str) -> bool:
    parts = relative.split("/")
    return len(parts) > 4 and parts[2] == REPO and parts[3] == "data"


def agency_problems(manifest: Manifest, medium: Path, agency: str) -> list[Problem]:
    """What differs between the agency's part of the medium and its manifest (see module doc)."""
    return compare(manifest, medium, cold=False, prefix=f"{AGENCIES}/{agency}/",
                   unhashed=_is_pack)


@dataclass
class OpenedMedium:
    root: Path
    manifest: Manifest
    signed_by: str | None  # the key id that signed it, when checked; None: not checked
    agencies: set[str] = field(default_factory=set)  # whose parts were checked

    @property
    def label(self) -> str:
        return self.manifest.label

    @property
    def store_name(self) -> str:
        """What jobs record and show as the store: a medium is not a store of the config (a
        store id cannot hold ':', so this never names one)."""
        return f"media:{self.manifest.label}"

    def require_agency(self, agency: str) -> None:
        if agency not in self.agencies:
            raise MediaInvalidError(
                f"the part of agency {agency} of medium {self.label} was not checked",
                "open the medium for that agency first")  # a programming error's guard

    def check_snapshot_ids(self, agency: str, ids: Iterable[tuple[str, str | None]]) -> None:
        """Every snapshot restic read from the medium, as (id, original), must be a snapshot
        id and one the manifest lists for the agency (restic copy names the source snapshot
        as `original`; the manifest lists that).

        Raises MediaInvalidError naming the first that is not."""
        listed = {s.id for s in self.manifest.agencies[agency].snapshots}
        for ident, original in ids:
            named = original or ident
            for value in (ident, named):
                if len(value) != 64 or not set(value) <= _HEX:
                    raise MediaInvalidError(
                        f"medium {self.label}: agency {agency}'s repository holds a snapshot "
                        f"whose id {value[:80]!r} is not 64 hex digits", "do not restore from "
                        "this medium; take another one")
            if named not in listed:
                raise MediaInvalidError(
                    f"medium {self.label}: snapshot {ident[:8]} of agency {agency} is not in "
                    "the medium's manifest", "the medium was altered after its export: take "
                    "another one (drbackup media verify shows every problem)")
