"""Source kinds: each turns its config into a BackupPlan for restic."""

from __future__ import annotations

from drbackup.config.models import DirectorySource, Source
from drbackup.sources.base import BackupPlan
from drbackup.sources.directory import plan_directory


def plan_backup(source: Source) -> BackupPlan:
    """The plan for one source. Raises SourceMissingError and kind-specific errors."""
    if isinstance(source, DirectorySource):
        return plan_directory(source)
    raise NotImplementedError(f"source kind {source.kind!r}")


__all__ = ["BackupPlan", "plan_backup"]
