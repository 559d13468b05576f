"""Every metric drbackup exports, in one place: name, type, labels and help text.

The collector builds its families from this table, docs/metrics.md documents each entry (a test
checks both ways), and the alert rules and dashboard use only names listed here.

Naming follows Prometheus practice: the `drbackup_` prefix, base units (seconds, bytes) as a
plural suffix, `_total` on counters only, `_timestamp_seconds` for points in time. Labels are
limited to agency, source, store, replica, kind, result and state (plus `version` on
drbackup_build_info): never snapshot ids or paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MetricType = Literal["gauge", "counter", "histogram"]
ALLOWED_LABELS = frozenset({"agency", "source", "store", "replica", "kind", "result", "state"})
# Seconds: a backup of a small source takes seconds, a large first backup hours.
DURATION_BUCKETS = (10.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 10800.0, 43200.0)
BACKUP_RESULTS = ("success", "warning", "failed", "interrupted")
FILE_STATES = ("new", "changed", "unmodified", "unreadable")


@dataclass(frozen=True)
class MetricDef:
    name: str
    type: MetricType
    labels: tuple[str, ...]
    help: str
    origin: str  # "state", "config", "live" or "process": where the value comes from


def _m(name: str, type_: MetricType, labels: tuple[str, ...], help_: str, origin: str
       ) -> MetricDef:
    return MetricDef(name, type_, labels, help_, origin)


AS = ("agency", "source")
METRICS: dict[str, MetricDef] = {m.name: m for m in [
    _m("drbackup_build_info", "gauge", ("version",),
       "Always 1; the drbackup version as a label. Its absence means no drbackup is scraped.",
       "process"),
    _m("drbackup_state_up", "gauge", (),
       "1 when the state database could be read for this scrape, else 0 (state-derived "
       "metrics are then missing).", "state"),
    # -- backups ---------------------------------------------------------------------------
    _m("drbackup_backup_last_success_timestamp_seconds", "gauge", AS,
       "When the last successful backup (result success or warning) of the source finished.",
       "state"),
    _m("drbackup_backup_first_success_timestamp_seconds", "gauge", AS,
       "When the first successful backup of the source finished (protected since).", "state"),
    _m("drbackup_backup_last_attempt_timestamp_seconds", "gauge", AS,
       "When the last backup attempt of the source started, whatever its result.", "state"),
    _m("drbackup_backup_runs_total", "counter", (*AS, "result"),
       "Finished backup runs by result (success, warning, failed, interrupted).", "state"),
    _m("drbackup_backup_consecutive_failures", "gauge", AS,
       "Failed backup runs since the last successful one (0 after a success).", "state"),
    _m("drbackup_backup_duration_seconds", "histogram", AS,
       "Wall-clock duration of successful backup runs.", "state"),
    _m("drbackup_backup_added_bytes_total", "counter", AS,
       "Bytes added to the repository by successful backups (after deduplication and "
       "compression).", "state"),
    _m("drbackup_backup_processed_bytes", "gauge", AS,
       "Bytes read from the source by the last successful backup.", "state"),
    _m("drbackup_backup_files", "gauge", (*AS, "state"),
       "Files seen by the last successful backup, by state (new, changed, unmodified, "
       "unreadable).", "state"),
    _m("drbackup_last_run_result", "gauge", (*AS, "kind", "result"),
       "1, labelled with the result of the last finished run of each job kind (backup, "
       "replicate, check, drill, forget, prune, ...) per agency and source (source is empty "
       "for agency-wide jobs).", "state"),
    _m("drbackup_dump_size_bytes", "gauge", AS,
       "Size of the database dump streamed by the last successful backup of a database source.",
       "state"),
    _m("drbackup_dump_duration_seconds", "gauge", AS,
       "Time the database dump of the last successful backup of a database source took.",
       "state"),
    # -- repositories and stores -------------------------------------------------------------
    _m("drbackup_snapshots", "gauge", ("agency", "store"),
       "Snapshots in the agency's repository in the store, as last counted by a job "
       "(`drbackup repo stats`, check or prune).", "state"),
    _m("drbackup_repository_size_bytes", "gauge", ("agency", "store"),
       "Stored (deduplicated, compressed) size of the agency's repository in the store, as last "
       "measured by a job.", "state"),
    _m("drbackup_store_up", "gauge", ("store",),
       "1 when the last reachability check of the store succeeded, else 0.", "state"),
    _m("drbackup_store_latency_seconds", "gauge", ("store",),
       "Round-trip time of the last successful reachability check of the store.", "state"),
    _m("drbackup_store_last_check_timestamp_seconds", "gauge", ("store",),
       "When the store's reachability was last checked.", "state"),
    _m("drbackup_replication_lag_seconds", "gauge", ("agency", "replica"),
       "Age of the oldest primary snapshot the replica lacks (0 when it lacks none): what "
       "losing the primary store now would cost beyond the replica.", "state"),
    _m("drbackup_replication_last_success_timestamp_seconds", "gauge", ("agency", "replica"),
       "When the last successful replication to the replica finished.", "state"),
    # -- verification and recovery -------------------------------------------------------------
    _m("drbackup_verify_last_success_timestamp_seconds", "gauge", ("agency", "kind"),
       "When the last successful verification of this kind (check, read-data check, restore "
       "drill) finished.", "state"),
    _m("drbackup_verify_last_failure_timestamp_seconds", "gauge", ("agency", "kind"),
       "When the last failed verification of this kind finished.", "state"),
    _m("drbackup_verify_runs_total", "counter", ("agency", "kind", "result"),
       "Finished verification runs by kind and result.", "state"),
    _m("drbackup_restore_drill_duration_seconds", "gauge", ("agency",),
       "Wall-clock duration of the newest successful restore drill of the agency.", "state"),
    _m("drbackup_rto_estimate_seconds", "gauge", ("agency",),
       "Estimated time to restore the whole agency: the sum, over its sources, of the RTO "
       "estimate the newest successful restore drill of each source recorded (else that "
       "drill's duration).", "state"),
    # -- the ransomware guard (#16) --------------------------------------------------------------
    _m("drbackup_guard_suspect", "gauge", AS,
       "1 when the ransomware guard judges the source suspect: its newest verdict is suspect "
       "(not released as a false alarm), or the agency's retention is frozen and one of the "
       "source's verdicts since the freeze began is suspect; else 0, also before its first "
       "verdict. For every directory source of an agency with the guard on.", "state"),
    _m("drbackup_guard_frozen", "gauge", ("agency",),
       "1 while a suspect snapshot freezes the agency's retention (no forget, no prune) until "
       "`drbackup guard release`, else 0. For every agency with the guard on.", "state"),
    _m("drbackup_guard_last_clean_timestamp_seconds", "gauge", AS,
       "When the guard assessed the source's last clean snapshot (a false alarm counts as "
       "clean): the newest before its first suspect one since the open freeze began, else the "
       "newest. Absent when there is none.", "state"),
    _m("drbackup_guard_last_verdict_timestamp_seconds", "gauge", AS,
       "When the guard last assessed a snapshot of the source (its newest verdict, clean or "
       "suspect); absent before the first. Stops moving when the guard stops assessing.",
       "state"),
    # -- offline copies on removable media (#19) -------------------------------------------------
    _m("drbackup_offline_copy_age_seconds", "gauge", ("agency",),
       "Age of the newest snapshot held by a verified offline medium of the agency (drbackup "
       "media export); +Inf before the first. For every agency with [agencies.offline].",
       "state"),
    _m("drbackup_offline_last_verified_export_timestamp_seconds", "gauge", ("agency",),
       "When the last export to an offline medium of the agency was read back and verified; "
       "absent before the first.", "state"),
    _m("drbackup_offline_max_age_seconds", "gauge", ("agency",),
       "Oldest the newest offline copy may be (config agencies[].offline.max_age).", "config"),
    # -- objectives from the config --------------------------------------------------------------
    _m("drbackup_rpo_target_seconds", "gauge", ("agency",),
       "Recovery point objective of the agency (config agencies[].rpo).", "config"),
    _m("drbackup_rto_target_seconds", "gauge", ("agency",),
       "Recovery time objective of the agency (config agencies[].rto).", "config"),
    _m("drbackup_verify_max_age_seconds", "gauge", ("agency",),
       "Longest allowed time without a successful verification (config "
       "agencies[].verify_max_age).", "config"),
    # -- the daemon's queue and watchers ---------------------------------------------------------
    _m("drbackup_jobs_running", "gauge", (),
       "Jobs (restic processes) running now.", "live"),
    _m("drbackup_jobs_queued", "gauge", (),
       "Jobs waiting for a free slot (daemon only).", "live"),
    _m("drbackup_pending_changes", "gauge", AS,
       "File changes seen by the watcher and not yet covered by a backup (daemon only).",
       "live"),
    _m("drbackup_watch_overflows_total", "counter", AS,
       "Times the kernel's change queue overflowed for the source (changes may have been "
       "missed; a full backup is scheduled), as counted by the daemon.", "live"),
    _m("drbackup_next_run_timestamp_seconds", "gauge", AS,
       "When the scheduler will next back up the source (daemon only).", "live"),
    # -- the host ------------------------------------------------------------------------------
    _m("drbackup_state_db_size_bytes", "gauge", (),
       "Size of the state database including its write-ahead log.", "state"),
    _m("drbackup_filesystem_avail_bytes", "gauge", ("kind",),
       "Bytes available to drbackup on the filesystem of its state (kind=state) or cache "
       "(kind=cache) directory.", "state"),
    _m("drbackup_filesystem_size_bytes", "gauge", ("kind",),
       "Size of the filesystem holding the state (kind=state) or cache (kind=cache) directory.",
       "state"),
]}


def check_definitions() -> list[str]:
    """Naming problems in METRICS (empty when fine); a unit test keeps this empty."""
    problems = []
    for name, metric in METRICS.items():
        if not name.startswith("drbackup_"):
            problems.append(f"{name}: no drbackup_ prefix")
        if (metric.type == "counter") != name.endswith("_total"):
            problems.append(f"{name}: only counters end in _total")
        extra = set(metric.labels) - ALLOWED_LABELS - ({"version"} if name.endswith("_info")
                                                       else set())
        if extra:
            problems.append(f"{name}: labels {sorted(extra)} are not allowed")
    return problems
