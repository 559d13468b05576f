"""Restore drills: prove a source can be restored, and measure how long it takes.

The table below says which drill each source kind has: written out, so a new kind is a line
here, not an import's side effect. The drills themselves:
- common.py: the run around every drill (state, signed report, verdict, RTO), result types,
  scratch database notes;
- files.py: directory sources (restore all or a sample, compare with the live files);
- database.py: the drill around database dumps, and the checks every engine shares;
- postgres.py (postgres sources, dumpdir sources), mysql.py, sqlite.py: one dump each.

Every drill is a run of job "drill" in state with a signed evidence report; its scratch space
is removed whatever happens (and a killed drill's leftovers at the next start).
"""

from __future__ import annotations

import logging
from pathlib import Path

from drbackup.config.models import AgencyConfig, DumpdirSource, Source
from drbackup.errors import DrBackupError, NotFoundError, VerifyFailedError
from drbackup.jobs.drills import files, mysql, postgres, sqlite
from drbackup.jobs.drills.common import (
    DrillFunction,
    DrillOutcome,
    ScratchDropper,
    clean_stale_databases,
)
from drbackup.jobs.runtime import Runtime
from drbackup.verify.scratch import clean_stale_scratch as _clean_scratch_dirs

log = logging.getLogger(__name__)

# source kind -> (drill kind, function).
DRILLS: dict[str, tuple[str, DrillFunction]] = {
    "directory": ("files", files.drill_directory),
    "postgres": ("db", postgres.drill_postgres),
    "mysql": ("db", mysql.drill_mysql),
    "sqlite": ("db", sqlite.drill_sqlite),
    "dumpdir": ("db", postgres.drill_postgres),
}

# source kind -> what drops the scratch database a killed drill of it left.
SCRATCH_DROPPERS: dict[str, ScratchDropper] = {
    "postgres": postgres.drop_scratch_database,
    "dumpdir": postgres.drop_scratch_database,
    "mysql": mysql.drop_scratch_database,
}

__all__ = ["DRILLS", "SCRATCH_DROPPERS", "DrillOutcome", "clean_stale_scratch", "drill_job",
           "drill_kind", "drill_source"]


def clean_stale_scratch(rt: Runtime) -> list[Path]:
    """Remove what killed drills left behind: scratch directories nobody holds, and scratch
    databases nobody holds. The daemon calls this at start; every verify run too."""
    removed = _clean_scratch_dirs(rt.config.daemon.state_dir)
    try:
        clean_stale_databases(rt, SCRATCH_DROPPERS)
    except DrBackupError as exc:
        log.warning("cleaning drill leftovers: %s", exc.one_line())
    return removed


def drill_kind(source: Source) -> str | None:
    """"files" or "db" for the source's kind; None when no drill exists for it (e.g. a dump
    folder without drill_postgres_dsn or drill_target = "local-instance")."""
    if isinstance(source, DumpdirSource) and not source.has_db_drill:
        return None
    entry = DRILLS.get(source.kind)
    return entry[0] if entry else None


def drill_source(rt: Runtime, agency: AgencyConfig, source: Source, *,
                 trigger: str = "cli") -> DrillOutcome:
    """Run the drill that fits the source's kind (the daemon's drill job).

    Raises NotFoundError when no drill exists for the kind, and the drill's own errors.
    """
    entry = DRILLS.get(source.kind)
    if entry is None:
        raise NotFoundError(f"no restore drill for {source.kind!r} sources",
                            "drills exist for: " + ", ".join(sorted(DRILLS)))
    return entry[1](rt, agency, source, trigger)


def drill_job(rt: Runtime, agency: AgencyConfig, store_name: str, trigger: str
              ) -> list[DrillOutcome]:
    """The daemon's periodic drill of every source of an agency that has a drill (signature of
    drbackup.daemon.tasks.JobFunction; drills read the primary store, `store_name`).

    Every source is drilled even when one fails; then raises VerifyFailedError naming the
    failed drills, or the first error that stopped a drill from running at all."""
    outcomes: list[DrillOutcome] = []
    first_error: DrBackupError | None = None
    for source in agency.sources:
        if drill_kind(source) is None:
            continue
        try:
            outcomes.append(drill_source(rt, agency, source, trigger=trigger))
        except DrBackupError as exc:
            log.error("drill of %s/%s could not run: %s", agency.id, source.id,
                      exc.one_line(), extra={"agency": agency.id, "source": source.id})
            first_error = first_error or exc
    failed = [o for o in outcomes if not o.passed]
    if failed:
        raise VerifyFailedError(
            f"restore drill failed for {agency.id}: "
            + "; ".join(f"{o.source}: {o.reasons[0] if o.reasons else o.verdict}"
                        for o in failed[:3]),
            "see the signed reports under the state directory's reports/")
    if first_error is not None:
        raise first_error
    return outcomes
