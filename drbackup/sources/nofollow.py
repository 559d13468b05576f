"""Reading agency-controlled paths without following links.

An agency owns its drop folder, its data directories and its database files, so whoever holds
that agency can put a symlink or a hard link there pointing at another agency's files. Everything
drbackup reads on an agency's behalf goes through these helpers: configured paths must not
contain a symlink in any component, drop-folder entries are looked at with lstat (regular files
only, one link only), and files are opened with O_NOFOLLOW and checked to be the very file that
was selected (same device and inode).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from drbackup.config.links import LINK_HINT, link_problem, symlink_component
from drbackup.errors import SourceMissingError

__all__ = ["LINK_HINT", "Identity", "entry_refusal", "link_problem", "open_directory",
           "open_entry", "open_selected", "refuse_links", "symlink_component"]

def refuse_links(source_id: str, what: str, path: Path) -> None:
    """Raises SourceMissingError when any component of path is a symlink (checked at backup
    time too: the link may have been made after `config check`)."""
    problem = link_problem(path)
    if problem is not None:
        raise SourceMissingError(f"source {source_id!r}: {what} {problem}; not backed up",
                                 LINK_HINT)


@dataclass(frozen=True)
class Identity:
    """What a selected file is: checked again on the opened descriptor."""

    dev: int
    ino: int

    @classmethod
    def of(cls, info: os.stat_result) -> Identity:
        return cls(info.st_dev, info.st_ino)


def entry_refusal(info: os.stat_result) -> str | None:
    """Why an lstat()ed drop-folder entry is not taken, or None for a plain regular file."""
    mode = info.st_mode
    if stat.S_ISLNK(mode):
        return "is a symlink (links are never followed)"
    if stat.S_ISDIR(mode):
        return "is a directory"
    if stat.S_ISFIFO(mode):
        return "is a fifo"
    if stat.S_ISSOCK(mode):
        return "is a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device file"
    if not stat.S_ISREG(mode):
        return "is not a regular file"
    if info.st_nlink > 1:
        # A hard link can name another agency's file on the same filesystem.
        return (f"has {info.st_nlink} hard links (a hard link may name another agency's file; "
                "the agency should write a new file instead)")
    return None


def open_selected(path: Path, expected: Identity) -> int:
    """A read-only descriptor of `path`, opened without following a symlink or blocking on a
    fifo, that is the regular file selected earlier. Raises OSError (EPERM-like with a clear
    strerror) when the entry was swapped since it was selected."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or Identity.of(info) != expected:
            raise OSError(0, "it is no longer the file that was selected (replaced since)")
        if info.st_nlink > 1:
            raise OSError(0, "it has gained a hard link since it was selected")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_directory(path: Path) -> int:
    """A read-only descriptor of the directory `path` itself, never of what a symlink there
    points to (a pg_dump -Fd dump in a drop folder). Raises OSError."""
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


def open_entry(directory_fd: int, name: str) -> int:
    """A read-only descriptor of the regular, single-link file `name` inside the directory
    `directory_fd`, opened without following a symlink or blocking on a fifo. Raises OSError
    (with a clear strerror when it is something else)."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY,
                 dir_fd=directory_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            raise OSError(0, "it is no longer a single-link regular file")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd
