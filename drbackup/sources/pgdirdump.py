"""pg_dump directory-format dumps (`pg_dump -Fd`) dropped into a drop folder: a directory
holding `toc.dat` and one file per table's data, taken as one dump.

The directory and its files are the agency's, so they are read as every drop-folder file is
(drbackup/sources/nofollow.py): the directory is opened with O_NOFOLLOW and must stay the very
directory selected (device, inode); its entries must be plain single-link regular files with
pg_dump's kind of names (a symlink, hard link, subdirectory or device refuses the whole dump),
each opened with O_NOFOLLOW relative to the directory. Files starting with "." are not part of
the dump and are left out.

Per-file mode streams it through the dump guard as one ustar archive: first DIRECTORY_MARKER
(a short note saying how to unpack it, and what tells a drill this is a directory dump, not a
`pg_dump -Ft` tar), then toc.dat, then the rest. The dump is complete when the sum of the
sizes and the newest mtime (directory and files) hold still for `settle`; if either changes
while it is streamed, the guard fails and restic makes no snapshot.
"""

from __future__ import annotations

import io
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from drbackup.sources.dumpformat import DIRECTORY_MARKER, MAX_MEMBERS
from drbackup.sources.nofollow import Identity, entry_refusal, open_directory, open_entry

TOC = "toc.dat"
MARKER_TEXT = (b"A pg_dump directory-format dump, packed by drbackup. Unpack it into an empty "
               b"directory (tar -xf NAME.tar -C DIR) and restore it with pg_restore -Fd DIR.\n")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


@dataclass(frozen=True)
class DirSummary:
    """What a directory dump is: the fingerprint a drop folder remembers and re-checks."""

    size: int  # the files' sizes, summed
    mtime_ns: int  # the newest mtime of the directory and its files
    dev: int
    ino: int
    blocks: int  # the files' allocated 512-byte blocks, summed


def _members(fd: int) -> list[str]:
    """The dump's file names (hidden ones left out), toc.dat first."""
    names = [name for name in os.listdir(fd) if not name.startswith(".")]
    return sorted(names, key=lambda name: (name != TOC, name))


def _summarise(fd: int) -> tuple[DirSummary | None, str | None]:
    info = os.fstat(fd)
    names = _members(fd)
    if TOC not in names:
        return None, f"is a directory (not a pg_dump -Fd dump: no {TOC})"
    if len(names) > MAX_MEMBERS:
        return None, f"is a directory dump of more than {MAX_MEMBERS} files"
    size, mtime, blocks = 0, info.st_mtime_ns, 0
    for name in names:
        member = os.stat(name, dir_fd=fd, follow_symlinks=False)
        problem = entry_refusal(member)
        if problem is None and not _NAME.fullmatch(name):
            problem = "has a name pg_dump does not write"
        if problem is not None:
            return None, f"is a pg_dump directory dump whose entry {name[:80]!r} {problem}"
        size += member.st_size
        mtime = max(mtime, member.st_mtime_ns)
        blocks += member.st_blocks
    return DirSummary(size, mtime, info.st_dev, info.st_ino, blocks), None


def inspect_directory(path: Path) -> tuple[DirSummary | None, str | None]:
    """(summary, None) for a pg_dump directory dump fit to be taken, else (None, why not)."""
    try:
        fd = open_directory(path)
    except OSError as exc:
        return None, f"cannot be read: {exc.strerror}"
    try:
        return _summarise(fd)
    except OSError as exc:
        return None, f"cannot be read: {exc.strerror}"
    finally:
        os.close(fd)


def stream_directory(path: Path, expected: DirSummary, out: IO[bytes], err: IO[str]) -> int:
    """Write the directory dump to `out` as a tar; exit 1 when it is not exactly the dump that
    was chosen (the same directory, the same files, unchanged while read)."""
    try:
        fd = open_directory(path)
    except OSError as exc:
        print(f"dumpdir: {path} cannot be read: {exc.strerror}", file=err)
        return 1
    try:
        info = os.fstat(fd)
        if Identity.of(info) != Identity(expected.dev, expected.ino):
            print(f"dumpdir: {path} is no longer the directory that was selected", file=err)
            return 1
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
            note = tarfile.TarInfo(DIRECTORY_MARKER)
            note.size, note.mode, note.mtime = len(MARKER_TEXT), 0o600, info.st_mtime
            tar.addfile(note, io.BytesIO(MARKER_TEXT))
            for name in _members(fd):
                problem = _add_member(tar, fd, name)
                if problem is not None:
                    print(f"dumpdir: {path}/{name} {problem}: not backed up", file=err)
                    return 1
        after, why = _summarise(fd)
    except (OSError, tarfile.TarError, ValueError) as exc:
        print(f"dumpdir: {path} cannot be read: {exc}", file=err)
        return 1
    finally:
        os.close(fd)
    if after is None or (after.size, after.mtime_ns) != (expected.size, expected.mtime_ns):
        print(f"dumpdir: {path} changed while it was read ({why or 'sizes or mtimes differ'}):"
              " not backed up", file=err)
        return 1
    out.flush()
    return 0


def _add_member(tar: tarfile.TarFile, fd: int, name: str) -> str | None:
    """Add one file of the dump, opened without following links; why not, or None."""
    try:
        member = open_entry(fd, name)
    except OSError as exc:
        return f"cannot be read: {exc.strerror}"
    with os.fdopen(member, "rb") as handle:
        before = os.fstat(member)
        entry = tarfile.TarInfo(name)
        entry.size, entry.mode, entry.mtime = before.st_size, 0o600, before.st_mtime
        tar.addfile(entry, handle)  # OSError when the file is shorter than it was
        after = os.fstat(member)
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        return "changed while it was read"
    return None
