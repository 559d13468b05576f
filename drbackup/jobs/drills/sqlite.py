"""SQLite drills: the latest copy of the database, restored into the drill's scratch directory
and checked there, read-only: PRAGMA integrity_check, row counts per table, and the source's
assertions (see database.py for the drill around the copy). A damaged copy fails the drill.
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import suppress
from pathlib import Path

from drbackup.config.models import AgencyConfig, Source, SqliteSource
from drbackup.jobs.drills.common import DrillOutcome, Fields
from drbackup.jobs.drills.database import DumpJob, run_assertions, run_db_drill
from drbackup.jobs.runtime import Runtime


def drill_sqlite(rt: Runtime, agency: AgencyConfig, source: Source, trigger: str
                 ) -> DrillOutcome:
    """The table's entry for sqlite sources (common.DrillFunction)."""
    if not isinstance(source, SqliteSource):
        raise TypeError(f"a SQLite drill needs a sqlite source, not {source.kind!r}")
    return run_db_drill(rt, agency, source, _restore_dump, trigger=trigger)


def _restore_dump(job: DumpJob[SqliteSource]) -> float:
    """Check the restored copy in the scratch directory (database.RestoreDump)."""
    source, dump, scratch, entry, record = job.source, job.dump, job.scratch, job.entry, job.record
    started = time.monotonic()
    copy = scratch / "restored.sqlite"
    os.replace(dump, copy)
    label = Path(job.path).name
    try:
        with sqlite3.connect(f"file:{copy}?mode=ro", uri=True) as db:
            integrity = [row[0] for row in db.execute("PRAGMA integrity_check")]
            if integrity != ["ok"]:
                raise sqlite3.DatabaseError("; ".join(str(i) for i in integrity[:5]))
            tables = [str(row[0]) for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
            counts: list[Fields] = []
            for table in tables:
                quoted = '"' + table.replace('"', '""') + '"'
                counts.append({"table": table, "rows": int(db.execute(
                    f"SELECT count(*) FROM {quoted}").fetchone()[0])})  # noqa: S608
            entry["tables"] = counts
            results, held = run_assertions(
                list(source.assertions),
                lambda sql: [str(v) for row in db.execute(sql) for v in row], label, record)
            entry["assertions"] = results
            entry["verdict"] = "pass" if held else "fail"
    except sqlite3.DatabaseError as exc:
        record.fail(f"{label}: the restored SQLite file is damaged: {exc}")
        entry["verdict"] = "fail"
    finally:
        with suppress(OSError):
            copy.unlink()
    return time.monotonic() - started
