"""Configured source paths must not go through symlinks: an agency that can write a linked
component (its own directory above a configured path, its drop folder) could point it at another
agency's files. Checked by `config check` and again by every backup."""

from __future__ import annotations

import os
import stat
from pathlib import Path

LINK_HINT = ("configure the real path (without symlinks); drbackup does not follow links in "
             "paths an agency may control")


def symlink_component(path: Path) -> Path | None:
    """The first component of the absolute `path` (itself included) that is a symlink, or None.

    Components that do not exist end the walk (nothing below them can be a link)."""
    current = Path(path.anchor or "/")
    for part in path.parts[1:]:
        current = current / part
        try:
            info = os.lstat(current)
        except (OSError, ValueError):
            return None
        if stat.S_ISLNK(info.st_mode):
            return current
    return None


def link_problem(path: Path) -> str | None:
    """One line naming the path and its symlinked component, or None when it has none."""
    link = symlink_component(path)
    if link is None:
        return None
    if link == path:
        return f"{path} is a symlink"
    return f"{path} goes through a symlink: {link}"
