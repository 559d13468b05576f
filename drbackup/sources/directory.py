"""Directory sources: paths on this host, read by restic directly."""

from __future__ import annotations

import os

from drbackup.config.models import DirectorySource
from drbackup.errors import SourceMissingError
from drbackup.sources.base import BackupPlan
from drbackup.sources.nofollow import refuse_links


def plan_directory(source: DirectorySource) -> BackupPlan:
    """restic 0.16–0.18 exit 0 when a top-level path is missing, so we check first.

    Raises SourceMissingError naming the first missing or unreadable path, or the first path
    that is or goes through a symlink (restic would follow a top-level link, and a link in an
    agency-owned ancestor can point anywhere): checked here, at backup time, as well as by
    `config check`.
    """
    for path in source.paths:
        refuse_links(source.id, "path", path)
        if not path.exists():
            raise SourceMissingError(
                f"source {source.id!r}: path {path} does not exist",
                "restore the path or fix sources.paths in the config; nothing was backed up")
        if path.is_dir() and not os.access(path, os.R_OK | os.X_OK):
            raise SourceMissingError(
                f"source {source.id!r}: path {path} cannot be read by this user",
                "grant read access (the service runs with CAP_DAC_READ_SEARCH)")
    return BackupPlan(paths=[str(p) for p in source.paths], excludes=list(source.exclude),
                      one_file_system=source.one_file_system)
