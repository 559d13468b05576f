"""The tags that tie a snapshot to its agency and source, and reading them back safely.

A snapshot's tags are written by whoever holds the agency's repository password, that is by
whoever owns the agency's host: when read back they are hostile input. Every id read from a tag
must fully match the id pattern before it names anything, and every path derived from one must
stay inside its base (`contained`)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from drbackup.config.models import AgencyConfig, Source, is_identifier
from drbackup.engine import Snapshot
from drbackup.errors import TargetRefusedError

# Tags whose values drbackup reads back as ids.
ID_KEYS = ("agency", "source", "kind")
# Database names (tag database=; a SQLite source's is its file name) follow the servers' rules,
# wider than ours, but they never contain a path separator, a space or control character, nor
# start with a dot (so never "." or "..").
_DATABASE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_$.-]{0,127}")
# restic snapshot ids: 64 hex digits (a unique prefix of at least 4 where the user types one).
_SNAPSHOT_ID = re.compile(r"[0-9a-f]{64}")


def snapshot_tags(agency: AgencyConfig, source: Source) -> list[str]:
    return [f"agency={agency.id}", f"source={source.id}", f"kind={source.kind}"]


def agency_tag(agency_id: str) -> str:
    return f"agency={agency_id}"


def source_filter(agency_id: str, source_id: str | None) -> list[str]:
    tags = [agency_tag(agency_id)]
    if source_id:
        tags.append(f"source={source_id}")
    return tags


def tag_values(snapshot: Snapshot, key: str) -> list[str]:
    """Every value of the `key=` tags of a snapshot (a forged one may carry several)."""
    prefix = f"{key}="
    return [tag[len(prefix):] for tag in snapshot.tags if tag.startswith(prefix)]


def is_database_name(value: object) -> bool:
    return isinstance(value, str) and _DATABASE.fullmatch(value) is not None


def is_snapshot_id(value: object) -> bool:
    return isinstance(value, str) and _SNAPSHOT_ID.fullmatch(value) is not None


def tag_problem(snapshot: Snapshot) -> str | None:
    """Why a snapshot's tags cannot be trusted to name anything, or None when they can: the
    snapshot id is not 64 hex digits, an id tag (agency=, source=, kind=) or database= appears
    more than once or does not fully match its pattern."""
    if not is_snapshot_id(snapshot.id):
        return f"snapshot id {snapshot.id[:80]!r} is not 64 hex digits"
    for key in (*ID_KEYS, "database"):
        values = tag_values(snapshot, key)
        if len(values) > 1:
            return f"snapshot {snapshot.short_id} has {len(values)} {key}= tags"
        valid = is_database_name if key == "database" else is_identifier
        if values and not valid(values[0]):
            return (f"snapshot {snapshot.short_id} has an invalid {key}= tag "
                    f"{values[0][:80]!r}")
    return None


def tag_id(snapshot: Snapshot, key: str) -> str | None:
    """The value of an id tag (agency=, source=, kind=, database=) when it is present once and
    fully valid, else None: a hostile value never reaches a path, a name or restic."""
    values = tag_values(snapshot, key)
    if len(values) != 1:
        return None
    valid = is_database_name if key == "database" else is_identifier
    return values[0] if valid(values[0]) else None


def contained(base: Path, name: str) -> Path:
    """base/name, refused unless `name` is one plain path component and the result stays
    inside `base` (checked without following symlinks: an existing link is refused too).

    Raises TargetRefusedError."""
    candidate = base / name
    plain = (bool(name) and "/" not in name and "\0" not in name and name not in (".", "..")
             and len(os.fsencode(name)) <= 255  # NAME_MAX: longer fails in every syscall
             and os.path.normpath(candidate).startswith(os.path.normpath(base) + os.sep))
    try:
        linked = plain and candidate.is_symlink()
    except (OSError, ValueError):
        plain = False
    if not plain or linked:
        raise TargetRefusedError(f"{name[:80]!r} would name a path outside {base}",
                                 "the name was read from a snapshot, kit or report: check who "
                                 "wrote it")
    return candidate


# Dumps are streamed into restic from stdin: such a snapshot holds one file at the root,
# named after the dump, not a path of this host.
_DUMP_KINDS = frozenset({"postgres", "mysql", "sqlite"})


def is_dump_snapshot(snapshot: Snapshot) -> bool:
    """Whether the snapshot holds a dump streamed from stdin (a database source, or one file of
    a drop folder) rather than paths of the host."""
    kind = tag_values(snapshot, "kind")
    formats = tag_values(snapshot, "format")
    return bool(_DUMP_KINDS.intersection(kind)) or any(f != "folder" for f in formats)
