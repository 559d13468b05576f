"""Directory sources: paths on this host, read by restic directly."""

from __future__ import annotations

import os

from drbackup.config.models import DirectorySource
from drbackup.errors import SourceMissingError
from drbackup.sources.base import BackupPlan
from drbackup.sources.nofollow import refuse_links


def _can_list(path: object) -> bool:
    """Whether this process can list the directory, decided by the kernel as it will decide for
    restic (effective ids and capabilities: the unit's CAP_DAC_READ_SEARCH). os.access() checks
    the real uid and ignores capabilities, so it refused what restic could read."""
    try:
        fd = os.open(str(path), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        with os.scandir(fd) as entries:
            next(entries, None)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def plan_directory(source: DirectorySource) -> BackupPlan:
    """restic 0.16–0.18 exit 0 when a top-level path is missing, so we check first.

    Raises SourceMissingError naming the first missing or unreadable path, or the first path
    that is or goes through a symlink (restic would follow a top-level link, and a link in an
    agency-owned ancestor can point anywhere): checked here, at backup time, as well as by
    `config check`.
    """
    for path in source.paths:
        refuse_links(source.id, "path", path)
        try:
            present = path.exists()
        except PermissionError:  # a parent this process may not search
            raise SourceMissingError(
                f"source {source.id!r}: path {path} cannot be reached by this user (a parent "
                "directory is not searchable)",
                "grant search access on its parents (the service runs with "
                "CAP_DAC_READ_SEARCH)") from None
        if not present:
            raise SourceMissingError(
                f"source {source.id!r}: path {path} does not exist",
                "restore the path or fix sources.paths in the config; nothing was backed up")
        if path.is_dir() and not _can_list(path):
            raise SourceMissingError(
                f"source {source.id!r}: path {path} cannot be read by this user",
                "grant read access (the service runs with CAP_DAC_READ_SEARCH)")
    return BackupPlan(paths=[str(p) for p in source.paths], excludes=list(source.exclude),
                      one_file_system=source.one_file_system)
