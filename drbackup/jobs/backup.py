"""The backup job: one source of one agency into its primary repository, recorded in state."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from drbackup.config.models import AgencyConfig, Source
from drbackup.engine import BackupSummary, ResticInterrupted
from drbackup.engine.restic import ProgressCallback
from drbackup.errors import DrBackupError
from drbackup.jobs.runtime import Runtime
from drbackup.jobs.tags import snapshot_tags
from drbackup.sources import plan_backup
from drbackup.state import RunCounts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackupOutcome:
    run_id: int
    agency: str
    source: str
    result: str  # "success" or "warning" (snapshot made, some files unreadable)
    summary: BackupSummary
    seconds: float
    unreadable: list[str] = field(default_factory=list)

    @property
    def snapshot_id(self) -> str | None:
        return self.summary.snapshot_id


def run_backup(rt: Runtime, agency: AgencyConfig, source: Source, *, trigger: str = "cli",
               on_progress: ProgressCallback | None = None) -> BackupOutcome:
    """Back up one source. Every attempt is recorded in state, failed ones with their error.

    Raises DrBackupError subclasses for expected failures (restic missing or too old, store
    unreachable, wrong password, missing source path, restic failure).
    """
    fields = {"agency": agency.id, "source": source.id, "job": "backup", "trigger": trigger}
    run_id = rt.state.start_run("backup", agency.id, source=source.id, store=agency.store,
                                trigger=trigger)
    fields["run_id"] = str(run_id)
    started = time.monotonic()
    log.info("backup started", extra=fields)
    plan = None
    try:
        rt.restic.require_supported()
        plan = plan_backup(source)
        rt.check_store(agency.store)
        result = rt.restic.backup(
            rt.target(agency),
            plan.paths,
            tags=[*snapshot_tags(agency, source), *plan.extra_tags],
            host=rt.hostname,
            excludes=plan.excludes,
            one_file_system=plan.one_file_system,
            stdin_command=plan.stdin_command,
            stdin_filename=plan.stdin_filename,
            timeout=source.timeout,
            on_progress=on_progress,
            cwd=plan.cwd,
            command_env=plan.command_env or None,
        )
    except DrBackupError as exc:
        outcome = "interrupted" if isinstance(exc, ResticInterrupted) else "failed"
        rt.state.finish_run(run_id, outcome, error=exc.one_line(),
                            details={"stderr_tail": getattr(exc, "stderr_tail", "")[-2000:]})
        log.error("backup %s: %s", outcome, exc.one_line(), extra=fields)
        raise
    except BaseException as exc:
        rt.state.finish_run(run_id, "interrupted" if isinstance(exc, KeyboardInterrupt)
                            else "failed", error=f"{exc.__class__.__name__}: {exc}")
        raise
    finally:
        if plan is not None:
            plan.run_cleanup()
    summary = result.summary
    outcome = "warning" if result.partial else "success"
    rt.state.finish_run(run_id, outcome, counts=RunCounts(
        snapshot_id=summary.snapshot_id,
        files_new=summary.files_new,
        files_changed=summary.files_changed,
        files_unmodified=summary.files_unmodified,
        files_unreadable=len(result.unreadable),
        bytes_added=summary.data_added,
        bytes_processed=summary.total_bytes_processed,
    ), details={"unreadable": result.unreadable[:50]} if result.unreadable else None,
        error="; ".join(result.unreadable[:5]) if result.unreadable else None)
    log.info("backup %s: snapshot %s, %d new files, %d bytes added", outcome,
             summary.snapshot_id, summary.files_new, summary.data_added, extra=fields)
    return BackupOutcome(run_id, agency.id, source.id, outcome, summary,
                         time.monotonic() - started, result.unreadable)
