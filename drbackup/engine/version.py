"""restic's version: parsing `restic version`, the minimum drbackup needs, and the memo that lets a
one-shot command skip `restic version` when the binary file has not changed since it last ran."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from drbackup.engine.models import ResticVersion

MINIMUM_VERSION = (0, 17, 1)
INSTALL_HINT = (
    "install restic >= 0.17.1: 'make setup' does it (Debian 12: the Debian 13 package), "
    "or set daemon.restic to its path"
)
_VERSION = re.compile(r"restic\s+v?(\d+)\.(\d+)\.(\d+)")


def parse_version(text: str) -> ResticVersion | None:
    """The version `restic version` printed, or None when the text names none."""
    match = _VERSION.search(text)
    if match is None:
        return None
    return ResticVersion(
        (int(match.group(1)), int(match.group(2)), int(match.group(3))), text.strip())


def binary_identity(binary: str, memo: Path | None) -> str | None:
    """The binary file as a key that changes when the file is replaced or rewritten; None when
    there is no memo to keep or the binary cannot be found."""
    if memo is None:
        return None
    found = shutil.which(binary)
    if found is None:
        return None
    try:
        real = os.path.realpath(found)
        info = os.stat(real)
    except OSError:
        return None
    return f"{real}:{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}"


def remembered_version(memo: Path | None, identity: str | None) -> str | None:
    """What `restic version` printed for this binary file, if the memo knows it."""
    if identity is None or memo is None:
        return None
    try:
        payload = json.loads(memo.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(payload, dict) and payload.get("binary") == identity:
        text = payload.get("version")
        return text if isinstance(text, str) else None
    return None


def remember_version(memo: Path | None, identity: str | None, text: str) -> None:
    """Keep `text` for this binary file; a memo that cannot be written is skipped."""
    if identity is None or memo is None:
        return
    try:
        scratch = memo.with_name(f".{memo.name}.{os.getpid()}")
        scratch.write_text(json.dumps({"binary": identity, "version": text.strip()}),
                           encoding="utf-8")
        os.replace(scratch, memo)
    except OSError:
        pass  # no memo costs one `restic version` per command, nothing else
