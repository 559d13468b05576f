"""The backup job: one source of one agency into its primary repository, recorded in state.

A source gives one or more plans (a postgres server with all = true: one per database; a drop
folder: one per new complete file, or none). Each plan is one restic run and one snapshot. A dump
plan runs under the dump guard: when the dump fails, restic makes no snapshot and the run is
recorded failed with the dump's stderr tail (DumpFailedError, exit code DUMP_FAILED). A failed dump
does not stop the source's other plans (issue 17 item 3): they are dumped and kept, each plan's
result and snapshot go into the run's details, and the run fails naming the failed ones."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from drbackup.config.models import AgencyConfig, Source
from drbackup.engine import BackupSummary, ForgetPolicy, ResticInterrupted
from drbackup.engine.errors import ResticError
from drbackup.engine.restic import ProgressCallback
from drbackup.errors import DrBackupError
from drbackup.jobs.guard import guard_session
from drbackup.jobs.recording import STDERR_KEPT, recorded_run
from drbackup.jobs.runtime import Runtime
from drbackup.jobs.tags import snapshot_tags
from drbackup.sources import BackupPlan, DumpError, DumpReport, PlanContext, plan_backups
from drbackup.state import RunCounts
from drbackup.state.guard import VerdictRecord

log = logging.getLogger(__name__)
# restic stops a dump run this much later than the dump guard would.
DUMP_RESTIC_GRACE = timedelta(minutes=2)
# Under the state dir: temporary copies (SQLite) need room, which /tmp (often tmpfs) may lack.
SCRATCH_DIR = "tmp"
NO_SNAPSHOT_SUFFIX = "; no snapshot was made"


@dataclass(frozen=True)
class DumpRecord:
    """One plan's snapshot (a database, a dump file) within a run."""

    label: str
    snapshot_id: str | None
    dump_bytes: int | None = None
    dump_seconds: float | None = None
    database: str | None = None  # the plan's database= tag, when it has one
    error: str | None = None  # the dump failed: why (then snapshot_id is None)


@dataclass(frozen=True)
class BackupOutcome:
    run_id: int
    agency: str
    source: str
    result: str  # "success", "warning" (snapshot made, some files unreadable), "skipped"
    summary: BackupSummary
    seconds: float
    unreadable: list[str] = field(default_factory=list)
    snapshots: list[DumpRecord] = field(default_factory=list)
    guard: VerdictRecord | None = None  # the guard's verdict (directory sources)

    @property
    def snapshot_id(self) -> str | None:
        return self.summary.snapshot_id


def _dump_failure(plan: BackupPlan, exc: ResticError) -> DrBackupError:
    """restic failed on a guarded dump: when the guard says the dump failed, that is the cause."""
    report = DumpReport.read(plan.dump_report) if plan.dump_report else None
    if report is None or report.ok or report.reader_gone:
        return exc
    detail = report.reason
    lines = [line.strip() for line in report.stderr_tail.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() or "fatal" in line.lower()]
    if errors or lines:
        detail += f": {(errors or lines)[-1]}"
    return DumpError(f"{detail}{NO_SNAPSHOT_SUFFIX}",
                     "fix the database or the source config and run the backup again; the "
                     "dump's stderr tail is in the log and the run's details",
                     stderr_tail="\n".join(filter(None, [report.reason, report.stderr_tail])))


def _details(records: list[DumpRecord], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    details: dict[str, Any] = dict(extra or {})
    dumps = [r for r in records if r.dump_bytes is not None]
    if dumps:
        details["dump_bytes"] = sum(r.dump_bytes or 0 for r in dumps)
        details["dump_seconds"] = round(sum(r.dump_seconds or 0.0 for r in dumps), 3)
    if len(records) > 1 or (records and records[0].label):
        details["snapshots"] = [_record_details(r) for r in records]
    return details


def _record_details(record: DumpRecord) -> dict[str, Any]:
    entry: dict[str, Any] = {"label": record.label, "snapshot_id": record.snapshot_id,
                             "dump_bytes": record.dump_bytes,
                             "dump_seconds": record.dump_seconds,
                             "result": "failed" if record.error else "success"}
    if record.database is not None:
        entry["database"] = record.database
    if record.error:
        entry["error"] = record.error
    return entry


def _plan_database(plan: BackupPlan) -> str | None:
    return next((tag.removeprefix("database=") for tag in plan.extra_tags
                 if tag.startswith("database=")), None)


def _some_dumps_failed(records: list[DumpRecord], failures: list[DumpError]) -> DumpError:
    """Some dumps failed, others made their snapshot: one error naming the failed ones."""
    failed = [r for r in records if r.error]
    made = len(records) - len(failed)
    message = (f"{len(failed)} of {len(records)} dumps failed: "
               + "; ".join(r.error or r.label for r in failed)
               + (f"; the other {made} {'dump was' if made == 1 else 'dumps were'} backed up, "
                  "one snapshot each" if made else NO_SNAPSHOT_SUFFIX))
    return DumpError(message,
                     "fix the failed database(s) or the source config (exclude_databases) and "
                     "run the backup again; each dump's result and snapshot are in the run's "
                     "details, the failed dumps' stderr tails in the log",
                     stderr_tail="\n\n".join(exc.stderr_tail for exc in failures
                                              if exc.stderr_tail))


def run_backup(rt: Runtime, agency: AgencyConfig, source: Source, *, trigger: str = "cli",
               on_progress: ProgressCallback | None = None) -> BackupOutcome:
    """Back up one source. Every attempt is recorded in state, failed ones with their error.

    Raises DrBackupError subclasses for expected failures (restic missing or too old, store
    unreachable, wrong password, missing source path, failed dump, restic failure).
    """
    fields = {"agency": agency.id, "source": source.id, "job": "backup", "trigger": trigger}
    plans: list[BackupPlan] = []
    records: list[DumpRecord] = []
    failures: list[DumpError] = []  # dumps that failed while the source's other plans went on

    def failed(outcome: str, exc: DrBackupError) -> None:
        log.error("backup %s: %s", outcome, exc.one_line(), extra=fields)
        if isinstance(exc, DumpError) and exc.stderr_tail:
            log.error("dump stderr tail:\n%s", exc.stderr_tail, extra=fields)

    with recorded_run(rt, "backup", agency.id, source=source.id, store=agency.store,
                      trigger=trigger, failure_details=lambda: _details(records),
                      on_failure=failed) as run:
        run_id = run.run_id
        fields["run_id"] = str(run_id)
        started = time.monotonic()
        log.info("backup started", extra=fields)
        summaries: list[BackupSummary] = []
        unreadable: list[str] = []
        verdict: VerdictRecord | None = None
        try:
            rt.restic.require_supported()
            plans = plan_backups(source, PlanContext(
                agency=agency.id, values=rt.state,
                scratch_dir=rt.config.daemon.state_dir / SCRATCH_DIR))
            if plans:
                rt.check_store(agency.store)
            target = rt.target(agency) if plans else None
            for plan in plans:
                assert target is not None
                guard = guard_session(rt, agency, source) if not plan.stdin_command else None
                timeout = source.timeout + DUMP_RESTIC_GRACE if plan.dump_report else source.timeout
                try:
                    result = rt.restic.backup(
                        target,
                        plan.paths,
                        tags=[*snapshot_tags(agency, source), *plan.extra_tags],
                        host=rt.hostname,
                        excludes=plan.excludes,
                        one_file_system=plan.one_file_system,
                        stdin_command=plan.stdin_command,
                        stdin_filename=plan.stdin_filename,
                        timeout=timeout,
                        on_progress=on_progress,
                        cwd=plan.cwd,
                        command_env=plan.command_env or None,
                    )
                except BaseException as exc:
                    if guard is not None:
                        guard.abandon()
                    if not isinstance(exc, ResticError):
                        raise
                    if not plan.dump_report or isinstance(exc, ResticInterrupted):
                        raise
                    failure = _dump_failure(plan, exc)
                    if not isinstance(failure, DumpError) or len(plans) == 1:
                        raise failure from None
                    # One failed dump does not stop the others (issue 17 item 3).
                    failures.append(failure)
                    records.append(DumpRecord(plan.label, None, database=_plan_database(plan),
                                              error=failure.message.removesuffix(
                                                  NO_SNAPSHOT_SUFFIX)))
                    log.error("%s", failure.one_line(), extra=fields)
                    if failure.stderr_tail:
                        log.error("dump stderr tail:\n%s", failure.stderr_tail, extra=fields)
                    continue
                snapshot_id = result.summary.snapshot_id
                try:
                    for action in plan.after_success:
                        action(snapshot_id)
                except DumpError:
                    if snapshot_id and rt.config.owns_maintenance(agency):
                        rt.restic.forget(target, ForgetPolicy(), snapshot_ids=[snapshot_id])
                    elif snapshot_id:
                        # forget takes restic's exclusive lock: only the maintenance host's.
                        log.warning("snapshot %s of a failed dump check is left for the "
                                    "maintenance host (%s)", snapshot_id[:8],
                                    agency.maintenance_host, extra=fields)
                    raise
                if guard is not None:
                    verdict = guard.assess(result, run_id)
                report = DumpReport.read(plan.dump_report) if plan.dump_report else None
                records.append(DumpRecord(plan.label, snapshot_id,
                                          report.bytes if report else None,
                                          round(report.seconds, 3) if report else None,
                                          database=_plan_database(plan)))
                summaries.append(result.summary)
                unreadable += result.unreadable
                log.info("snapshot %s of %s", (snapshot_id or "none")[:8], plan.label or source.id,
                         extra=fields)
        finally:
            for plan in plans:
                plan.run_cleanup()
        seconds = time.monotonic() - started
        if failures and not summaries:
            raise failures[0] if len(failures) == 1 else _some_dumps_failed(records, failures)
        if not summaries:
            run.finish("skipped", details={"reason": "nothing ready to back up"})
            log.info("backup skipped: nothing ready", extra=fields)
            return BackupOutcome(run_id, agency.id, source.id, "skipped", BackupSummary(None),
                                 seconds)
        summary = _combined(summaries)
        outcome = "warning" if unreadable else "success"
        extra: dict[str, Any] = {"unreadable": unreadable[:50]} if unreadable else {}
        if verdict is not None:
            extra["guard"] = {"verdict": verdict.verdict, "rules": verdict.rules,
                              "reasons": verdict.reasons, "numbers": verdict.numbers}
        details = _details(records, extra)
        partial = _some_dumps_failed(records, failures) if failures else None
        if partial is not None:
            outcome = "failed"
            details["stderr_tail"] = partial.stderr_tail[-STDERR_KEPT:]
            log.error("backup failed: %s", partial.one_line(), extra=fields)
        run.finish(outcome, counts=RunCounts(
            snapshot_id=summary.snapshot_id,
            files_new=summary.files_new,
            files_changed=summary.files_changed,
            files_unmodified=summary.files_unmodified,
            files_unreadable=len(unreadable),
            bytes_added=summary.data_added,
            bytes_processed=summary.total_bytes_processed,
        ), details=details or None, error=partial.one_line() if partial is not None else
            "; ".join(unreadable[:5]) if unreadable else None)
        if partial is not None:
            raise partial
    log.info("backup %s: snapshot %s, %d new files, %d bytes added", outcome,
             summary.snapshot_id, summary.files_new, summary.data_added, extra=fields)
    return BackupOutcome(run_id, agency.id, source.id, outcome, summary, seconds, unreadable,
                         records if len(records) > 1 or records[0].label else [], verdict)


def _combined(summaries: list[BackupSummary]) -> BackupSummary:
    """One summary for a run of several snapshots: sums, and the last snapshot's id."""
    if len(summaries) == 1:
        return summaries[0]
    return BackupSummary(
        snapshot_id=summaries[-1].snapshot_id,
        files_new=sum(s.files_new for s in summaries),
        files_changed=sum(s.files_changed for s in summaries),
        files_unmodified=sum(s.files_unmodified for s in summaries),
        dirs_new=sum(s.dirs_new for s in summaries),
        dirs_changed=sum(s.dirs_changed for s in summaries),
        dirs_unmodified=sum(s.dirs_unmodified for s in summaries),
        data_added=sum(s.data_added for s in summaries),
        data_added_packed=sum(s.data_added_packed for s in summaries),
        total_files_processed=sum(s.total_files_processed for s in summaries),
        total_bytes_processed=sum(s.total_bytes_processed for s in summaries),
        total_duration=sum(s.total_duration for s in summaries),
    )

