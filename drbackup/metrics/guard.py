"""The ransomware guard's figures (#16) for the metrics: per agency with the guard on, whether
its retention is frozen; per directory source of such an agency, whether it is suspect, when it
was last assessed and when its last clean snapshot was.

The same answers as drbackup/state/guard.py (open_freeze(), suspects_in_freeze(),
last_clean()), in two statements per scrape whatever the size of the fleet: the agencies and
sources go in as one JSON parameter (SQLite's json_each, built in since 3.38), and every lookup
seeks an index (guard_freezes_by_agency, guard_verdicts_by_snapshot, guard_verdicts_by_source)
and reads from the newest verdict back to the newest clean one, so the history's length costs
nothing. Only in a frozen agency are a source's verdicts since the freeze began read, up to its
first suspect one. Those functions, called per source, would cost 3 queries per source and read
up to 1000 verdicts each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from drbackup.config.models import Config, DirectorySource
from drbackup.metrics.samples import Samples
from drbackup.state import StateDB

# agency -> the id from which its open freeze counts verdicts (that of the snapshot that opened
# it; 0 when that verdict is gone, as suspects_in_freeze() does), or NULL when not frozen.
_FREEZES = """
SELECT a.value,
       (SELECT COALESCE((SELECT v.id FROM guard_verdicts v
                         WHERE v.agency = f.agency AND v.snapshot_id = f.snapshot_id), 0)
          FROM guard_freezes f
         WHERE f.agency = a.value AND f.released_at IS NULL
         ORDER BY f.id LIMIT 1)
  FROM json_each(?) a
"""
# The id of the source's first suspect verdict (not a false alarm) since its agency's freeze
# began; NULL when not frozen, without a lookup.
_FIRST_SUSPECT = """CASE WHEN k.since IS NULL THEN NULL ELSE (
         SELECT v.id FROM guard_verdicts v
          WHERE v.agency = k.agency AND v.source = k.source AND v.id >= k.since
            AND v.verdict = 'suspect' AND v.false_alarm = 0
          ORDER BY v.id LIMIT 1) END"""
# Per [agency, source, freeze start or null]: when the newest verdict was made and whether it
# is suspect, whether one since the freeze began is suspect, and when the newest clean one (a
# false alarm counts as clean) before that first suspect one was made, else the newest clean
# one. FIRST_SUSPECT appears twice but costs a lookup only for frozen agencies; a CTE holding
# it measured slower (SQLite inlines it, or with MATERIALIZED fills a temporary table).
_SOURCES = """
WITH k AS (
  SELECT json_extract(value, '$[0]') AS agency, json_extract(value, '$[1]') AS source,
         json_extract(value, '$[2]') AS since
    FROM json_each(?)
)
SELECT k.agency, k.source, n.assessed_at,
       COALESCE(n.verdict = 'suspect' AND n.false_alarm = 0, 0),
       (FIRST_SUSPECT) IS NOT NULL,
       (SELECT c.assessed_at FROM guard_verdicts c
         WHERE c.agency = k.agency AND c.source = k.source
           AND c.id < COALESCE(FIRST_SUSPECT, 9223372036854775807)
           AND NOT (c.verdict = 'suspect' AND c.false_alarm = 0)
         ORDER BY c.id DESC LIMIT 1)
  FROM k LEFT JOIN guard_verdicts n ON n.id = (
         SELECT v.id FROM guard_verdicts v WHERE v.agency = k.agency AND v.source = k.source
          ORDER BY v.id DESC LIMIT 1)
""".replace("FIRST_SUSPECT", _FIRST_SUSPECT)


@dataclass(frozen=True)
class GuardedSource:
    agency: str
    source: str
    suspect: bool  # newest verdict suspect, or a suspect one since the agency's freeze began
    last_verdict: float | None  # assessed_at of the newest verdict
    last_clean: float | None  # assessed_at of state.guard.last_clean()


@dataclass(frozen=True)
class GuardView:
    """One scrape's guard figures; comparable, so the collector can tell they changed."""

    frozen: tuple[tuple[str, bool], ...] = ()  # (agency, frozen), in config order
    sources: tuple[GuardedSource, ...] = ()


def guarded(config: Config) -> list[tuple[str, list[str]]]:
    """Agencies with the guard on, with their directory sources (the only ones it assesses)."""
    return [(agency.id, [s.id for s in agency.sources if isinstance(s, DirectorySource)])
            for agency in config.agencies if agency.guard.enabled]


def read_guard(state: StateDB, config: Config) -> GuardView:
    """The guard figures of every guarded agency and source. Raises StateError."""
    agencies = guarded(config)
    if not agencies:
        return GuardView()
    since: dict[str, int | None] = {}
    for agency, start in state.read(_FREEZES, (json.dumps([a for a, _ in agencies]),)):
        since[str(agency)] = None if start is None else int(start)
    keys = [[agency, source, since.get(agency)] for agency, sources in agencies
            for source in sources]
    found: dict[tuple[str, str], GuardedSource] = {}
    if keys:
        for agency, source, verdict_at, newest_suspect, frozen_suspect, clean_at in state.read(
                _SOURCES, (json.dumps(keys),)):
            key = (str(agency), str(source))
            found[key] = GuardedSource(
                key[0], key[1], bool(newest_suspect) or bool(frozen_suspect),
                None if verdict_at is None else float(verdict_at),
                None if clean_at is None else float(clean_at))
    return GuardView(
        frozen=tuple((agency, since.get(agency) is not None) for agency, _ in agencies),
        sources=tuple(found.get((agency, source), GuardedSource(agency, source, False, None,
                                                                None))
                      for agency, sources in agencies for source in sources))


def add_guard(out: Samples, view: GuardView) -> None:
    """The drbackup_guard_* families of one scrape (absent timestamps stay absent)."""
    for agency, frozen in view.frozen:
        out.add("drbackup_guard_frozen", (agency,), 1.0 if frozen else 0.0)
    for item in view.sources:
        labels = (item.agency, item.source)
        out.add("drbackup_guard_suspect", labels, 1.0 if item.suspect else 0.0)
        out.add("drbackup_guard_last_verdict_timestamp_seconds", labels, item.last_verdict)
        out.add("drbackup_guard_last_clean_timestamp_seconds", labels, item.last_clean)
