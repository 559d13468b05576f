"""The backup job as a long-running process (the daemon) runs it: before the backup, remove the
stale locks a run that died left on the repository, and make sure the repository exists (once
per process); a repository that is not usable is recorded as a failed backup run.

`KnownRepositories` is what the process remembers between jobs, shared by its worker threads:
which repositories exist, and which need a plain `restic unlock` (stale locks only, never
--remove-all) before their next job."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from drbackup.config.models import AgencyConfig, Source
from drbackup.engine.restic import local_repository_present
from drbackup.errors import DrBackupError
from drbackup.jobs.backup import BackupOutcome, run_backup
from drbackup.jobs.recording import record_failed_run
from drbackup.jobs.repository import init_repository
from drbackup.jobs.runtime import Runtime

log = logging.getLogger(__name__)

RepoKey = tuple[str, str]  # (agency, store)


class KnownRepositories:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready: set[RepoKey] = set()
        self._needs_unlock: set[RepoKey] = set()

    def needs_unlock(self, agency_id: str, store: str) -> None:
        """A run on this repository was left open (a stop or crash): its next job unlocks it
        first, inside the queue, so nothing else runs on the repository meanwhile."""
        with self._lock:
            self._needs_unlock.add((agency_id, store))

    def unlock_if_needed(self, rt: Runtime, agency: AgencyConfig, store: str) -> None:
        key = (agency.id, store)
        with self._lock:
            if key not in self._needs_unlock:
                return
        target = rt.target(agency, store)
        try:
            rt.restic.unlock(target)
        except DrBackupError as exc:
            log.error("could not remove stale locks of %s: %s", target.display, exc.one_line(),
                      extra={"agency": agency.id, "store": store, "event": "unlock_failed"})
            return  # retried before the next job on this repository
        with self._lock:
            self._needs_unlock.discard(key)
        log.info("removed stale locks of %s (plain restic unlock)", target.display,
                 extra={"agency": agency.id, "store": store, "event": "unlock"})

    def ensure_repository(self, rt: Runtime, agency: AgencyConfig) -> None:
        """The agency's primary repository exists: checked (or created) once per process."""
        key = (agency.id, agency.store)
        with self._lock:
            if key in self._ready:
                return
        local = rt.store_config(agency.store).path is not None
        if not (local and local_repository_present(rt.target(agency))):
            # An existing local repository is not opened here: restic itself will say if it
            # cannot open it. Anything else goes through the idempotent init.
            init_repository(rt, agency)
        with self._lock:
            self._ready.add(key)


def backup_in_daemon(rt: Runtime, agency: AgencyConfig, source: Source, *, trigger: str,
                     repositories: KnownRepositories, log_fields: Mapping[str, str]
                     ) -> BackupOutcome:
    """Unlock if needed, make sure the repository exists, back up. Raises DrBackupError like
    run_backup; a repository that could not be unlocked-and-readied is recorded as a failed
    backup run first. `log_fields` are the queued job's (agency, job, store, trigger, source)."""
    try:
        repositories.unlock_if_needed(rt, agency, agency.store)
        repositories.ensure_repository(rt, agency)
    except DrBackupError as exc:
        run_id = record_failed_run(rt, "backup", agency.id, exc, source=source.id,
                                   store=agency.store, trigger=trigger)
        log.error("backup failed: repository not usable: %s", exc.one_line(),
                  extra={**log_fields, "run_id": run_id})
        raise
    return run_backup(rt, agency, source, trigger=trigger)
