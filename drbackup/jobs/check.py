"""The check job: `restic check` of an agency's repository.

Data is read in a rotation: each data check reads `--read-data-subset=k/N` and advances k
(persisted in the state kv table per repository), so every pack is read once every N data
checks (N = verify.check_subsets). Checks in between, scheduled while the last data check is
younger than verify.data_check_interval, verify the structure only. Every check is a run of job
"check" in state with a signed evidence report.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from drbackup.config.models import AgencyConfig
from drbackup.engine import CheckResult
from drbackup.errors import DrBackupError, VerifyFailedError
from drbackup.jobs.evidence import PublishedReport, publish_report, report_name, utc_iso
from drbackup.jobs.maintenance import require_configured_owner, require_owner
from drbackup.jobs.recording import recorded_run
from drbackup.jobs.runtime import Runtime

log = logging.getLogger(__name__)

CheckMode = Literal["auto", "structure", "subset", "full"]
CheckKind = Literal["structure", "read-data-subset", "read-data"]


@dataclass(frozen=True)
class CheckOutcome:
    run_id: int
    agency: str
    store: str
    kind: CheckKind
    subset: str | None  # "k/N" for a rotating data check
    verdict: str  # "pass" | "fail"
    result: CheckResult
    seconds: float
    report: PublishedReport
    findings: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"


def subset_key(agency: AgencyConfig, store_name: str) -> str:
    return f"verify.check.next_subset.{agency.id}@{store_name}"


def next_subset(rt: Runtime, agency: AgencyConfig, store_name: str) -> int:
    """The k of the next rotating data check (1..N)."""
    total = agency.verify.check_subsets
    raw = rt.state.get_value(subset_key(agency, store_name))
    try:
        value = int(raw) if raw is not None else 1
    except ValueError:
        value = 1
    return value if 1 <= value <= total else 1


def _data_check_due(rt: Runtime, agency: AgencyConfig, store_name: str) -> bool:
    for run in rt.state.runs(agency=agency.id, job="check", limit=200):
        if run.store != store_name or run.result in ("running", "interrupted"):
            continue
        if run.details.get("kind") in ("read-data-subset", "read-data"):
            age = time.time() - run.started_at
            return age >= agency.verify.data_check_interval.total_seconds()
    return True


def run_check(rt: Runtime, agency: AgencyConfig, *, mode: CheckMode = "auto",
              store_name: str | None = None, trigger: str = "cli") -> CheckOutcome:
    """Check one agency's repository. "auto" (the daemon's mode) reads the next data subset when
    one is due and checks structure otherwise; "subset" always reads the next subset; "full"
    reads all data.

    A repository with errors gives an outcome with verdict "fail" (never an exception); restic
    failing to run at all (unreachable, locked, wrong password) raises its DrBackupError after
    the run is recorded as failed.
    """
    name = store_name or agency.store
    # restic check takes the exclusive lock: the maintenance host's job (jobs/maintenance.py).
    require_configured_owner(rt, agency, "check")
    if mode == "auto":
        mode = "subset" if _data_check_due(rt, agency, name) else "structure"
    kind: CheckKind = {"structure": "structure", "subset": "read-data-subset",
                       "full": "read-data"}[mode]  # type: ignore[assignment]
    k = next_subset(rt, agency, name)
    total = agency.verify.check_subsets
    subset = f"{k}/{total}" if kind == "read-data-subset" else None
    error_details = {"kind": kind, "subset": subset, "verdict": "error"}
    with recorded_run(rt, "check", agency.id, store=name, trigger=trigger,
                      failure_details=lambda: error_details) as run:
        run_id = run.run_id
        fields = run.fields
        log.info("check started (%s%s)", kind, f" {subset}" if subset else "", extra=fields)
        started_wall = time.time()
        started = time.monotonic()
        rt.restic.require_supported()
        rt.check_store(name)
        require_owner(rt, agency, name, "check")
        target = rt.target(agency, name)
        result = rt.restic.check(target, read_data=kind == "read-data", read_data_subset=subset)
        seconds = time.monotonic() - started
        if kind == "read-data-subset":
            rt.state.set_value(subset_key(agency, name), str(k % total + 1))
        verdict = "pass" if result.ok else "fail"
        findings: list[str] = []
        if not result.ok:
            findings.append(f"restic check found {result.num_errors} error(s)"
                            + (f" in {len(result.broken_packs)} pack(s)" if result.broken_packs
                               else ""))
            findings += result.errors[:20]
        report: dict[str, Any] = {
            "kind": "check",
            "check_kind": kind,
            "subset": subset,
            "agency": agency.id,
            "store": name,
            "repository": target.display,
            "host": rt.hostname,
            "run_id": run_id,
            "trigger": trigger,
            "started_at": utc_iso(started_wall),
            "finished_at": utc_iso(time.time()),
            "seconds": round(seconds, 3),
            "restic_version": str(rt.restic.version()),
            "num_errors": result.num_errors,
            "errors": result.errors[:100],
            "broken_packs": result.broken_packs[:100],
            "suggest_repair_index": result.suggest_repair_index,
            "suggest_prune": result.suggest_prune,
            "findings": findings,
            "verdict": verdict,
        }
        try:
            published = publish_report(rt, agency,
                                       report_name("check", name, run_id, started_wall), report)
        except DrBackupError as exc:
            run.finish("failed", error=f"evidence not written: {exc.one_line()}",
                       details=error_details)
            raise
        details: dict[str, Any] = {
            "kind": kind, "subset": subset, "verdict": verdict, "seconds": round(seconds, 3),
            "bytes": None, "throughput": None, "rto_estimate_seconds": None,
            "num_errors": result.num_errors, "broken_packs": result.broken_packs[:20],
            "findings": findings, "report_path": str(published.path),
            "report_key": published.store_key, "report_key_id": published.key_id,
            "upload_error": published.upload_error,
        }
        run.finish("success" if result.ok else "failed", details=details,
                   error=None if result.ok else "; ".join(findings[:3]))
    log.info("check %s: %s", kind, verdict, extra=fields)
    return CheckOutcome(run_id, agency.id, name, kind, subset, verdict, result, seconds,
                        published, findings)


def check_job(rt: Runtime, agency: AgencyConfig, store_name: str, trigger: str
              ) -> CheckOutcome:
    """The daemon's periodic check (signature of drbackup.daemon.tasks.JobFunction): "auto"
    mode, so data subsets rotate every data_check_interval with structure checks in between.

    Raises VerifyFailedError when the repository has errors (the run and its signed report are
    recorded first), and the errors of run_check."""
    outcome = run_check(rt, agency, mode="auto", store_name=store_name, trigger=trigger)
    if not outcome.passed:
        raise VerifyFailedError(
            f"repository check ({outcome.kind}) of {agency.id}@{store_name} found "
            f"{outcome.result.num_errors} error(s)",
            f"see the signed report {outcome.report.path}")
    return outcome
