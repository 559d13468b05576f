"""The ransomware guard's records (#16): a verdict per assessed snapshot, the agency's
retention freeze (open from the first suspect snapshot until a person releases it), and the
allowances a source learned from false alarms. Plain values in and out; the rules live in
drbackup/guard/, the job in drbackup/jobs/guard.py."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from drbackup.state.db import StateDB

CLEAN, SUSPECT = "clean", "suspect"
_VERDICT_COLUMNS = ("id, agency, source, snapshot_id, run_id, assessed_at, verdict, churn, "
                    "rules, reasons, numbers, rule_values, false_alarm")
_NO_ID = 2**63 - 1  # above every row id
_FREEZE_COLUMNS = ("id, agency, source, snapshot_id, since, released_at, released_by, "
                   "release_reason, false_alarm")


@dataclass(frozen=True)
class VerdictRecord:
    id: int
    agency: str
    source: str
    snapshot_id: str
    run_id: int | None
    assessed_at: float
    verdict: str
    churn: float | None
    rules: list[str]
    reasons: list[str]
    numbers: dict[str, Any]
    rule_values: dict[str, float]
    false_alarm: bool = False

    @property
    def suspect(self) -> bool:
        """Suspect and not released as a false alarm."""
        return self.verdict == SUSPECT and not self.false_alarm

    def as_json(self) -> dict[str, Any]:
        return {"snapshot_id": self.snapshot_id, "source": self.source, "verdict": self.verdict,
                "false_alarm": self.false_alarm, "assessed_at": self.assessed_at,
                "run_id": self.run_id, "rules": self.rules, "reasons": self.reasons,
                "numbers": self.numbers}


@dataclass(frozen=True)
class FreezeRecord:
    id: int
    agency: str
    source: str  # the source of the first suspect snapshot
    snapshot_id: str
    since: float
    released_at: float | None = None
    released_by: str | None = None
    release_reason: str | None = None
    false_alarm: bool = False


@dataclass(frozen=True)
class NewVerdict:
    agency: str
    source: str
    snapshot_id: str
    run_id: int | None
    verdict: str
    churn: float | None
    rules: list[str]
    reasons: list[str]
    numbers: dict[str, Any]
    rule_values: dict[str, float] = field(default_factory=dict)


def _loads(text: str, default: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return default


def _verdict(row: tuple[Any, ...]) -> VerdictRecord:
    return VerdictRecord(
        id=int(row[0]), agency=str(row[1]), source=str(row[2]), snapshot_id=str(row[3]),
        run_id=None if row[4] is None else int(row[4]), assessed_at=float(row[5]),
        verdict=str(row[6]), churn=None if row[7] is None else float(row[7]),
        rules=list(_loads(row[8], [])), reasons=list(_loads(row[9], [])),
        numbers=dict(_loads(row[10], {})), rule_values=dict(_loads(row[11], {})),
        false_alarm=bool(row[12]))


def _freeze(row: tuple[Any, ...]) -> FreezeRecord:
    return FreezeRecord(id=int(row[0]), agency=str(row[1]), source=str(row[2]),
                        snapshot_id=str(row[3]), since=float(row[4]),
                        released_at=None if row[5] is None else float(row[5]),
                        released_by=row[6], release_reason=row[7], false_alarm=bool(row[8]))


def record_verdict(state: StateDB, new: NewVerdict, *, at: float | None = None
                   ) -> VerdictRecord:
    """Store a verdict; a suspect one opens the agency's freeze unless one is open. Both in
    one transaction: a kill in between cannot leave a suspect verdict without its freeze.
    A snapshot already recorded keeps its first verdict and opens nothing. Raises StateError."""
    when = time.time() if at is None else at
    statements: list[tuple[str, tuple[Any, ...]]] = [(
        "INSERT INTO guard_verdicts (agency, source, snapshot_id, run_id, assessed_at, "
        "verdict, churn, rules, reasons, numbers, rule_values) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT(agency, snapshot_id) DO NOTHING",
        (new.agency, new.source, new.snapshot_id, new.run_id, when, new.verdict, new.churn,
         json.dumps(new.rules), json.dumps(new.reasons), json.dumps(new.numbers,
                                                                    sort_keys=True),
         json.dumps(new.rule_values, sort_keys=True)))]
    if new.verdict == SUSPECT:
        statements.append((
            # changes(): only when the verdict was inserted just now, not for a snapshot
            # already recorded (clean, or suspect in a freeze since released).
            "INSERT INTO guard_freezes (agency, source, snapshot_id, since) SELECT ?, ?, ?, ? "
            "WHERE changes() = 1 AND NOT EXISTS (SELECT 1 FROM guard_freezes WHERE agency = ? "
            "AND released_at IS NULL)", (new.agency, new.source, new.snapshot_id, when,
                                         new.agency)))
    state.write(statements)
    found = verdict_for(state, new.agency, new.snapshot_id)
    assert found is not None
    return found


def verdict_for(state: StateDB, agency: str, snapshot_id: str) -> VerdictRecord | None:
    """The verdict of a snapshot, by its full id or a unique prefix of it."""
    rows = state.read(f"SELECT {_VERDICT_COLUMNS} FROM guard_verdicts WHERE agency = ? AND "  # noqa: S608
                      "snapshot_id >= ? AND snapshot_id < ? ORDER BY id LIMIT 2",
                      (agency, snapshot_id, snapshot_id + "\uffff"))
    return _verdict(rows[0]) if len(rows) == 1 else None


def verdicts(state: StateDB, agency: str, source: str | None = None, *, limit: int = 1000,
             since_id: int = 0) -> list[VerdictRecord]:
    """Verdicts, newest first."""
    sql = f"SELECT {_VERDICT_COLUMNS} FROM guard_verdicts WHERE agency = ? AND id > ?"  # noqa: S608
    params: tuple[Any, ...] = (agency, since_id)
    if source is not None:
        sql += " AND source = ?"
        params += (source,)
    rows = state.read(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
    return [_verdict(row) for row in rows]


def history(state: StateDB, agency: str, source: str, window: int
            ) -> tuple[list[float], int]:
    """Churn of the source's last `window` clean (or false-alarm) snapshots, oldest first,
    and how many of its snapshots were assessed in all."""
    rows = state.read(
        "SELECT churn FROM guard_verdicts WHERE agency = ? AND source = ? AND churn IS NOT "
        "NULL AND (verdict = ? OR false_alarm = 1) ORDER BY id DESC LIMIT ?",
        (agency, source, CLEAN, window))
    count = state.read("SELECT COUNT(*) FROM guard_verdicts WHERE agency = ? AND source = ?",
                       (agency, source))
    return [float(r[0]) for r in reversed(rows)], int(count[0][0])


def open_freeze(state: StateDB, agency: str) -> FreezeRecord | None:
    rows = state.read(f"SELECT {_FREEZE_COLUMNS} FROM guard_freezes WHERE agency = ? AND "  # noqa: S608
                      "released_at IS NULL ORDER BY id LIMIT 1", (agency,))
    return _freeze(rows[0]) if rows else None


def freezes(state: StateDB, agency: str) -> list[FreezeRecord]:
    """Every freeze of the agency, newest first."""
    rows = state.read(f"SELECT {_FREEZE_COLUMNS} FROM guard_freezes WHERE agency = ? "  # noqa: S608
                      "ORDER BY id DESC", (agency,))
    return [_freeze(row) for row in rows]


def suspects_in_freeze(state: StateDB, freeze: FreezeRecord) -> list[VerdictRecord]:
    """Suspect verdicts (not released as false alarms) since the freeze opened."""
    first = verdict_for(state, freeze.agency, freeze.snapshot_id)
    rows = state.read(f"SELECT {_VERDICT_COLUMNS} FROM guard_verdicts WHERE agency = ? AND "  # noqa: S608
                      "id >= ? AND verdict = ? AND false_alarm = 0 ORDER BY id DESC",
                      (freeze.agency, first.id if first else 0, SUSPECT))
    return [_verdict(row) for row in rows]


def mark_false_alarm(state: StateDB, verdict: VerdictRecord,
                     allowances: dict[str, float]) -> None:
    statements: list[tuple[str, tuple[Any, ...]]] = [
        ("UPDATE guard_verdicts SET false_alarm = 1 WHERE id = ?", (verdict.id,))]
    for rule, value in allowances.items():
        statements.append((
            "INSERT INTO guard_allowances (agency, source, rule, value) VALUES (?,?,?,?) "
            "ON CONFLICT(agency, source, rule) DO UPDATE SET value = excluded.value",
            (verdict.agency, verdict.source, rule, value)))
    state.write(statements)


def close_freeze(state: StateDB, freeze: FreezeRecord, *, by: str, reason: str,
                 false_alarm: bool, at: float | None = None) -> None:
    state.write([("UPDATE guard_freezes SET released_at = ?, released_by = ?, "
                  "release_reason = ?, false_alarm = ? WHERE id = ? AND released_at IS NULL",
                  (time.time() if at is None else at, by, reason, int(false_alarm),
                   freeze.id))])


def allowances(state: StateDB, agency: str, source: str) -> dict[str, float]:
    rows = state.read("SELECT rule, value FROM guard_allowances WHERE agency = ? AND "
                      "source = ?", (agency, source))
    return {str(rule): float(value) for rule, value in rows}


def last_clean(state: StateDB, agency: str, source: str) -> VerdictRecord | None:
    """The newest clean snapshot of the source before its first suspect one since the open
    freeze began; with no freeze (or none of its snapshots suspect), the newest clean one.
    A false alarm counts as clean."""
    freeze = open_freeze(state, agency)
    before = _NO_ID
    if freeze is not None:
        mine = [v.id for v in suspects_in_freeze(state, freeze) if v.source == source]
        if mine:
            before = min(mine)
    rows = state.read(f"SELECT {_VERDICT_COLUMNS} FROM guard_verdicts WHERE agency = ? AND "  # noqa: S608
                      "source = ? AND id < ? AND (verdict != ? OR false_alarm = 1) "
                      "ORDER BY id DESC LIMIT 1", (agency, source, before, SUSPECT))
    return _verdict(rows[0]) if rows else None


# -- the whole fleet at once (metrics) --------------------------------------------------------
# The same answers as open_freeze(), suspects_in_freeze() and last_clean(), in two statements
# whatever the size of the fleet: the agencies and sources go in as one JSON parameter
# (SQLite's json_each, built in since 3.38), and every lookup seeks an index
# (guard_freezes_by_agency, guard_verdicts_by_snapshot, guard_verdicts_by_source) and reads
# from the newest verdict back to the newest clean one, so the history's length costs nothing.
# Only in a frozen agency are a source's verdicts since the freeze began read, up to its first
# suspect one. Those functions, called per source, would cost 3 queries per source.

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
class SourceFigures:
    agency: str
    source: str
    suspect: bool  # newest verdict suspect, or a suspect one since the agency's freeze began
    last_verdict: float | None  # assessed_at of the newest verdict
    last_clean: float | None  # assessed_at of last_clean()


def fleet_figures(state: StateDB, agencies: list[tuple[str, list[str]]]
                  ) -> tuple[dict[str, int | None], list[SourceFigures]]:
    """For (agency, [source, ...]): each agency's freeze start (the verdict id it counts from;
    None when not frozen) and each source's figures. Raises StateError."""
    since: dict[str, int | None] = {}
    for agency, start in state.read(_FREEZES, (json.dumps([a for a, _ in agencies]),)):
        since[str(agency)] = None if start is None else int(start)
    keys = [[agency, source, since.get(agency)] for agency, sources in agencies
            for source in sources]
    if not keys:
        return since, []
    return since, [
        SourceFigures(str(agency), str(source), bool(newest_suspect) or bool(frozen_suspect),
                      None if verdict_at is None else float(verdict_at),
                      None if clean_at is None else float(clean_at))
        for agency, source, verdict_at, newest_suspect, frozen_suspect, clean_at in state.read(
            _SOURCES, (json.dumps(keys),))]
