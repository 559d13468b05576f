"""Replaying a PostgreSQL globals dump (`pg_dumpall --globals-only`) onto a server: what it
would change about the roles already there, said before anything changes.

A globals dump sets every role's password as it was on the dumped server (`ALTER ROLE name
WITH ... PASSWORD 'SCRAM-SHA-256$...'`). Replayed onto a server that has lived on since (a
role's password rotated, a standby with its own passwords), it silently puts the old
passwords back and the applications using the new ones stop connecting. So the dump is read
first (it is small: roles and tablespaces; bounded by MAX_GLOBALS_BYTES), the roles it gives a
password compared with the target's, and one warning names the existing roles whose password
the replay changes, before the replay starts.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import IO

from drbackup.sources.base import DumpError

# A globals dump is a few KiB per hundred roles; anything near this is not one.
MAX_GLOBALS_BYTES = 64 << 20
# pg_dumpall writes one statement per line: ALTER ROLE <name> WITH <attributes> PASSWORD '...';
_ROLE_PASSWORD = re.compile(
    rb"^(?:CREATE|ALTER) ROLE (\"(?:[^\"]|\"\")+\"|[A-Za-z_][A-Za-z0-9_$]*)(?=[\s;]).*?"
    rb"\sPASSWORD '((?:[^']|'')*)'", re.MULTILINE)

log = logging.getLogger(__name__)

Feed = Callable[[IO[bytes]], None]
Query = Callable[[str], list[str]]


class _BoundedCopy:
    """A write-only sink keeping what a feed writes, up to MAX_GLOBALS_BYTES."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > MAX_GLOBALS_BYTES:
            raise DumpError(f"the globals dump is larger than {MAX_GLOBALS_BYTES >> 20} MiB: "
                            "not a pg_dumpall --globals-only dump",
                            "check the snapshot (--database _globals holds roles and "
                            "tablespaces only); nothing was replayed")
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


def role_passwords(dump: bytes) -> dict[str, str]:
    """The roles a globals dump gives a password, with the password (a SCRAM/MD5 verifier as
    pg_dumpall writes it, or clear text); the last statement for a role wins."""
    found: dict[str, str] = {}
    for match in _ROLE_PASSWORD.finditer(dump):
        raw = match.group(1).decode("utf-8", errors="replace")
        name = raw[1:-1].replace('""', '"') if raw.startswith('"') else raw.lower()
        found[name] = match.group(2).decode("utf-8", errors="replace").replace("''", "'")
    return found


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def password_changes(query: Query, passwords: dict[str, str]) -> tuple[list[str], bool]:
    """(existing roles whose password the replay would change, whether that is known rather
    than assumed). Without the right to read pg_authid (not a superuser) every existing role
    the dump gives a password counts. Raises DumpError when the server cannot be asked."""
    if not passwords:
        return [], True
    names = ", ".join(_literal(name) for name in sorted(passwords))
    try:
        rows = query(f"SELECT rolname || '|' || coalesce(rolpassword, '') FROM pg_authid "  # noqa: S608
                     f"WHERE rolname IN ({names}) ORDER BY 1;")
    except DumpError:
        existing = query(f"SELECT rolname FROM pg_roles WHERE rolname IN ({names}) "  # noqa: S608
                         "ORDER BY 1;")
        return sorted(existing), False
    changed = []
    for row in rows:
        name, _, current = row.partition("|")
        if passwords.get(name) != current:
            changed.append(name)
    return sorted(changed), True


def warn_before_replay(query: Query, feed: Feed) -> Feed:
    """Read the globals dump `feed` writes (bounded), warn in one line when replaying it would
    change the password of roles that exist on the target, and return a feed that writes the
    same bytes again for the replay. Raises DumpError for a dump too large to be globals."""
    copy = _BoundedCopy()
    feed(copy)  # type: ignore[arg-type]  # write/flush is all a feed uses
    dump = b"".join(copy.parts)
    copy.parts.clear()
    changed, known = password_changes(query, role_passwords(dump))
    if changed:
        shown = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more"
                                           if len(changed) > 10 else "")
        log.warning(
            "replaying the globals %s the password of %d existing role(s): %s (the "
            "passwords from the dump replace theirs; clients using the current ones stop "
            "connecting)", "changes" if known else "may change (cannot read "
            "pg_authid to compare)", len(changed), shown,
            extra={"event": "globals_password_change"})

    def replay(sink: IO[bytes]) -> None:
        sink.write(dump)

    return replay
