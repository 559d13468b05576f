"""The ransomware guard's figures (#16) for the metrics: per agency with the guard on, whether
its retention is frozen; per directory source of such an agency, whether it is suspect, when it
was last assessed and when its last clean snapshot was.

Read with state.guard.fleet_figures(): two statements per scrape whatever the size of the
fleet (the SQL lives with the guard's tables, beside open_freeze() and last_clean(), whose
answers it gives).
"""

from __future__ import annotations

from dataclasses import dataclass

from drbackup.config.models import Config, DirectorySource
from drbackup.metrics.samples import Samples
from drbackup.state import StateDB
from drbackup.state import guard as records


@dataclass(frozen=True)
class GuardView:
    """One scrape's guard figures; comparable, so the collector can tell they changed."""

    frozen: tuple[tuple[str, bool], ...] = ()  # (agency, frozen), in config order
    sources: tuple[records.SourceFigures, ...] = ()


def guarded(config: Config) -> list[tuple[str, list[str]]]:
    """Agencies with the guard on, with their directory sources (the only ones it assesses)."""
    return [(agency.id, [s.id for s in agency.sources if isinstance(s, DirectorySource)])
            for agency in config.agencies if agency.guard.enabled]


def read_guard(state: StateDB, config: Config) -> GuardView:
    """The guard figures of every guarded agency and source. Raises StateError."""
    agencies = guarded(config)
    if not agencies:
        return GuardView()
    since, figures = records.fleet_figures(state, agencies)
    found = {(f.agency, f.source): f for f in figures}
    return GuardView(
        frozen=tuple((agency, since.get(agency) is not None) for agency, _ in agencies),
        sources=tuple(found.get((agency, source),
                                records.SourceFigures(agency, source, False, None, None))
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
