"""The ransomware guard in a backup (#16): beside restic, in a thread started with the backup,
walk the source, compare it with the last assessed listing and sample the changed files; once
restic is done, judge the snapshot with restic's summary, record the verdict (state, the run's
details, a signed evidence report in the store) and, for a suspect one, freeze the agency's
retention. restic runs as without the guard (no --verbose=2, no per-file output).

The guard never fails a backup: the snapshot exists either way. When the guard itself cannot
finish (state or listing unwritable), the snapshot stays unassessed, which is never "clean":
the next backup is compared with the last assessed listing, so its changes are seen then.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from drbackup.config.models import AgencyConfig, DirectorySource, GuardConfig, Source
from drbackup.engine import BackupResult
from drbackup.errors import DrBackupError, GuardFrozenError
from drbackup.guard import listing
from drbackup.guard.signals import Collector, SampleLimits
from drbackup.guard.verdict import History, Thresholds, assess
from drbackup.guard.walk import Excludes, Walk
from drbackup.jobs.evidence import publish_report, report_name, utc_iso
from drbackup.jobs.runtime import Runtime
from drbackup.state import guard as records

log = logging.getLogger(__name__)
GUARD_DIR = "guard"


def thresholds(config: GuardConfig) -> Thresholds:
    return Thresholds(hit_share=config.hit_share, hit_files=config.hit_files,
                      min_hits=config.min_hits, note_dirs=config.note_dirs,
                      learning_backups=config.learning_backups,
                      churn_percentile=config.churn_percentile,
                      churn_factor=config.churn_factor, churn_floor=config.churn_floor)


def listing_path(rt: Runtime, agency: str, source: str) -> Path:
    return rt.config.daemon.state_dir / GUARD_DIR / agency / f"{source}.listing.gz"


@dataclass
class GuardSession:
    """One backup's guard: `start` before restic (the walk and the sample run beside it),
    `assess` once the snapshot exists, `abandon` when there is none."""

    rt: Runtime
    agency: AgencyConfig
    source: DirectorySource
    started_ns: int = 0
    collector: Collector | None = None
    error: BaseException | None = None
    walk_seconds: float = 0.0
    _thread: threading.Thread | None = None
    _cancel: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self.started_ns = time.time_ns()
        self._thread = threading.Thread(target=self._prepare, name="guard-walk", daemon=True)
        self._thread.start()

    def _prepare(self) -> None:
        began = time.monotonic()
        config = self.agency.guard
        try:
            self.collector = Collector(_previous(self.rt, self.agency, self.source),
                                       ignore=config.ignore)
            walk = Walk([str(p) for p in self.source.paths], Excludes.of(self.source.exclude),
                        self.source.one_file_system, cancel=self._cancel)
            self.collector.prepare(walk, SampleLimits(config.sample_files, config.sample_bytes,
                                                      config.file_bytes),
                                   started_ns=self.started_ns, cancel=self._cancel,
                                   extra_notes=config.extra_notes,
                                   extra_extensions=config.extra_extensions)
        except Exception as exc:  # noqa: BLE001 - reported by assess: the backup goes on
            self.error = exc
        self.walk_seconds = time.monotonic() - began

    def abandon(self) -> None:
        """restic made no snapshot: stop the walk (it reads nothing more)."""
        self._cancel.set()

    def _collected(self) -> Collector:
        if self._thread is None:
            self.start()
        assert self._thread is not None
        self._thread.join()
        if self.error is not None:
            raise self.error
        assert self.collector is not None
        return self.collector

    def assess(self, result: BackupResult, run_id: int) -> records.VerdictRecord | None:
        """Judge and record the snapshot; None when the guard could not (logged)."""
        snapshot_id = result.summary.snapshot_id
        if snapshot_id is None:
            return None
        fields = {"agency": self.agency.id, "source": self.source.id, "run_id": str(run_id)}
        config = self.agency.guard
        started = time.monotonic()
        try:
            collector = self._collected()
            waited = time.monotonic() - started
            signals = collector.finish(
                snapshot_id, data_added=result.summary.data_added,
                data_added_packed=result.summary.data_added_packed,
                extra_notes=config.extra_notes, extra_extensions=config.extra_extensions)
            state = self.rt.state
            churn, assessed = records.history(state, self.agency.id, self.source.id,
                                              config.baseline_backups)
            verdict = assess(signals, thresholds(config), History(
                churn, assessed, records.allowances(state, self.agency.id, self.source.id)))
            # guard_seconds: after restic (the wait for the walk included); walk_seconds: the
            # walk, compare and sample, beside restic.
            numbers = {**verdict.numbers, "guard_seconds": round(time.monotonic() - started, 3),
                       "walk_seconds": round(self.walk_seconds, 3),
                       "walk_wait_seconds": round(waited, 3)}
            record = records.record_verdict(state, records.NewVerdict(
                self.agency.id, self.source.id, snapshot_id, run_id, verdict.verdict,
                signals.churn, list(verdict.rules), list(verdict.reasons), numbers,
                verdict.values))
            # After the verdict: a kill in between leaves the older listing, and the next
            # backup sees these changes again rather than never.
            listing.save(listing_path(self.rt, self.agency.id, self.source.id),
                         collector.current, packed=collector.packed)
        except Exception as exc:  # noqa: BLE001 - the snapshot exists: never fail the backup
            why = exc.one_line() if isinstance(exc, DrBackupError) else (
                f"{exc.__class__.__name__}: {exc}")
            log.error("guard: snapshot %s left unassessed (never counted clean; the next "
                      "backup is compared with the last assessed one): %s", snapshot_id[:8],
                      why, extra=fields)
            return None
        if record.suspect:
            log.error("guard: snapshot %s of %s is SUSPECT, retention of agency %s frozen: %s",
                      snapshot_id[:8], self.source.id, self.agency.id,
                      "; ".join(record.reasons), extra=fields)
        else:
            log.info("guard: snapshot %s clean: %s", snapshot_id[:8], "; ".join(record.reasons),
                     extra=fields)
        self._publish(record)
        return record

    def _publish(self, record: records.VerdictRecord) -> None:
        report = {"kind": "guard-verdict", "agency": self.agency.id, "host": self.rt.hostname,
                  "assessed_at": utc_iso(record.assessed_at), **record.as_json()}
        name = report_name("guard", self.source.id, record.run_id or 0, record.assessed_at)
        try:
            publish_report(self.rt, self.agency, name, report)
        except DrBackupError as exc:
            log.warning("guard: verdict report not written: %s", exc.one_line(),
                        extra={"agency": self.agency.id})


def _previous(rt: Runtime, agency: AgencyConfig, source: Source) -> listing.Listing | None:
    path = listing_path(rt, agency.id, source.id)
    try:
        return listing.load(path)
    except listing.ListingError as exc:
        log.warning("guard: listing %s unreadable (%s); this backup is compared with nothing",
                    path, exc, extra={"agency": agency.id, "source": source.id})
        return None


def guard_session(rt: Runtime, agency: AgencyConfig, source: Source) -> GuardSession | None:
    """The guard of a backup of this source, started (its walk runs from now on), or None:
    guard off, or not a directory source (database dumps and drop-folder files are one file
    per snapshot; see docs/guard.md)."""
    if not agency.guard.enabled or not isinstance(source, DirectorySource):
        return None
    session = GuardSession(rt, agency, source)
    session.start()
    return session


def require_unfrozen(rt: Runtime, agency: AgencyConfig, what: str) -> None:
    """Raises GuardFrozenError while the agency's retention is frozen (forget, prune: on the
    primary and every replica, daemon or CLI)."""
    freeze = records.open_freeze(rt.state, agency.id)
    if freeze is None:
        return
    first = records.verdict_for(rt.state, agency.id, freeze.snapshot_id)
    why = f" ({first.reasons[0]})" if first and first.reasons else ""
    raise GuardFrozenError(
        f"{what} refused: retention of agency {agency.id!r} is frozen since "
        f"{utc_iso(freeze.since)}: snapshot {freeze.snapshot_id[:8]} of source "
        f"{freeze.source!r} is suspect{why}; nothing was removed",
        f"find the last clean snapshot with 'drbackup guard status --agency {agency.id}'; "
        f"release with 'drbackup guard release --agency {agency.id} --reason TEXT' only once "
        "the incident is handled (runbooks/en/ransomware-suspected.md)")
