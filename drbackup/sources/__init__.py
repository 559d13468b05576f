"""Source kinds: each turns its config into BackupPlans for restic (one restic run each)."""

from __future__ import annotations

from drbackup.config.models import (
    DirectorySource,
    DumpdirSource,
    MysqlSource,
    PostgresSource,
    Source,
    SqliteSource,
)
from drbackup.sources.base import BackupPlan, DumpError, DumpReport, PlanContext
from drbackup.sources.directory import plan_directory


def plan_backups(source: Source, context: PlanContext | None = None) -> list[BackupPlan]:
    """The plans for one source: usually one; a postgres source with all = true gives one per
    database; a drop folder one per new complete file, or none when nothing is ready.

    Raises SourceMissingError, DumpError (a database cannot be reached or listed)."""
    if isinstance(source, DirectorySource):
        return [plan_directory(source)]
    if isinstance(source, PostgresSource):
        from drbackup.sources.postgres import plan_postgres

        return plan_postgres(source)
    if isinstance(source, MysqlSource):
        from drbackup.sources.mysql import plan_mysql

        return plan_mysql(source)
    if isinstance(source, SqliteSource):
        from drbackup.sources.sqlite import plan_sqlite

        return plan_sqlite(source, context.scratch_dir if context else None)
    if isinstance(source, DumpdirSource):
        from drbackup.sources.dumpdir import plan_dumpdir

        return plan_dumpdir(source, context or PlanContext(agency=""))
    raise NotImplementedError(f"source kind {source.kind!r}")


def plan_backup(source: Source) -> BackupPlan:
    """The single plan of a source that always has exactly one (e.g. a directory)."""
    plans = plan_backups(source)
    if len(plans) != 1:
        for plan in plans:
            plan.run_cleanup()
        raise NotImplementedError(f"source kind {source.kind!r} makes {len(plans)} plans")
    return plans[0]


__all__ = ["BackupPlan", "DumpError", "DumpReport", "PlanContext", "plan_backup", "plan_backups"]
