"""Offline media records (#19): the catalogue (what each medium written here holds, when it was
last written and verified, where it is kept), the sequence number per agency per destination,
the imports done on this side of the gap (replay protection), and the evidence reports those
imports carried (the drills done where the data lives). Plain values in and out; the
jobs are drbackup/jobs/media_export.py and media_import.py."""

from __future__ import annotations

import json
from dataclasses import dataclass

from drbackup.state.db import StateDB

WRITING, VERIFIED, FAILED = "writing", "verified", "failed"
_COLUMNS = ("label, agency, destination, sequence, state, written_at, verified_at, location, "
            "snapshots, files, bytes, newest_snapshot_time")


@dataclass(frozen=True)
class MediumRecord:
    label: str
    agency: str
    destination: str
    sequence: int
    state: str  # writing | verified | failed
    written_at: float
    verified_at: float | None
    location: str | None
    snapshots: list[str]
    files: int
    bytes: int
    newest_snapshot_time: float | None


def _record(row: tuple[object, ...]) -> MediumRecord:
    snapshots = json.loads(str(row[8]))
    return MediumRecord(str(row[0]), str(row[1]), str(row[2]), int(str(row[3])), str(row[4]),
                        float(str(row[5])), None if row[6] is None else float(str(row[6])),
                        None if row[7] is None else str(row[7]),
                        [str(s) for s in snapshots], int(str(row[9])), int(str(row[10])),
                        None if row[11] is None else float(str(row[11])))


def next_sequence(state: StateDB, agency: str, destination: str) -> int:
    """Take the next sequence number of (agency, destination): never given out twice."""
    state.write([("INSERT INTO media_sequences (agency, destination, sequence) VALUES (?, ?, 1) "
                  "ON CONFLICT (agency, destination) DO UPDATE SET sequence = sequence + 1",
                  (agency, destination))])
    rows = state.read("SELECT sequence FROM media_sequences WHERE agency = ? AND destination = ?",
                      (agency, destination))
    return int(rows[0][0])


def record_medium(state: StateDB, record: MediumRecord) -> None:
    state.write([(f"INSERT OR REPLACE INTO media ({_COLUMNS}) VALUES "  # noqa: S608
                  "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  (record.label, record.agency, record.destination, record.sequence,
                   record.state, record.written_at, record.verified_at, record.location,
                   json.dumps(record.snapshots), record.files, record.bytes,
                   record.newest_snapshot_time))])


def set_location(state: StateDB, label: str, location: str) -> int:
    return state.write([("UPDATE media SET location = ? WHERE label = ?", (location, label))])


def media(state: StateDB, agency: str | None = None) -> list[MediumRecord]:
    if agency is None:
        rows = state.read(f"SELECT {_COLUMNS} FROM media ORDER BY agency, label")  # noqa: S608
    else:
        rows = state.read(f"SELECT {_COLUMNS} FROM media WHERE agency = ? ORDER BY label",  # noqa: S608
                          (agency,))
    return [_record(r) for r in rows]


def medium(state: StateDB, label: str, agency: str) -> MediumRecord | None:
    rows = state.read(f"SELECT {_COLUMNS} FROM media WHERE label = ? AND agency = ?",  # noqa: S608
                      (label, agency))
    return _record(rows[0]) if rows else None


def newest_verified_copy(state: StateDB, agency: str) -> float | None:
    """The time of the newest snapshot held by a verified medium of the agency (epoch s)."""
    rows = state.read("SELECT MAX(newest_snapshot_time) FROM media WHERE agency = ? AND "
                      "state = ?", (agency, VERIFIED))
    return None if not rows or rows[0][0] is None else float(rows[0][0])


def last_verified_export(state: StateDB, agency: str) -> float | None:
    rows = state.read("SELECT MAX(verified_at) FROM media WHERE agency = ? AND state = ?",
                      (agency, VERIFIED))
    return None if not rows or rows[0][0] is None else float(rows[0][0])


def highest_imported(state: StateDB, agency: str, key_id: str, destination: str) -> int:
    rows = state.read("SELECT MAX(sequence) FROM media_imports WHERE agency = ? AND key_id = ? "
                      "AND destination = ?", (agency, key_id, destination))
    return 0 if not rows or rows[0][0] is None else int(rows[0][0])


def record_import(state: StateDB, *, agency: str, key_id: str, destination: str, sequence: int,
                  label: str, imported_at: float, snapshots: list[str]) -> int:
    return state.write([("INSERT INTO media_imports (agency, key_id, destination, sequence, "
                         "label, imported_at, snapshots) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (agency, key_id, destination, sequence, label, imported_at,
                          json.dumps(snapshots)))])


@dataclass(frozen=True)
class ImportedEvidence:
    """A signed evidence report carried across on a medium, as its fields read."""
    agency: str
    name: str  # the report's file name under <state_dir>/reports/<agency>/
    kind: str  # drill | check | guard
    source: str | None
    sub_kind: str | None  # the drill kind (files | db) or the check kind
    verdict: str | None
    finished_at: float | None
    host: str  # where the drill or check ran
    rto_estimate_seconds: float | None
    key_id: str  # of the key that signed it
    label: str  # the medium it came on
    imported_at: float


_EVIDENCE = ("agency, name, kind, source, sub_kind, verdict, finished_at, host, "
             "rto_estimate_seconds, key_id, label, imported_at")


def record_evidence(state: StateDB, evidence: list[ImportedEvidence]) -> None:
    """Record imported reports; one already recorded (same agency and name) is replaced."""
    if evidence:
        state.write([(f"INSERT OR REPLACE INTO media_evidence ({_EVIDENCE}) VALUES "  # noqa: S608
                      "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (e.agency, e.name, e.kind, e.source, e.sub_kind, e.verdict,
                       e.finished_at, e.host, e.rto_estimate_seconds, e.key_id, e.label,
                       e.imported_at)) for e in evidence])


def imported_evidence(state: StateDB, agency: str) -> list[ImportedEvidence]:
    """The agency's imported reports, newest first."""
    rows = state.read(f"SELECT {_EVIDENCE} FROM media_evidence WHERE agency = ? "  # noqa: S608
                      "ORDER BY finished_at DESC, name DESC", (agency,))

    def number(value: object) -> float | None:
        return None if value is None else float(str(value))

    def text(value: object) -> str | None:
        return None if value is None else str(value)

    return [ImportedEvidence(str(r[0]), str(r[1]), str(r[2]), text(r[3]), text(r[4]),
                             text(r[5]), number(r[6]), str(r[7]), number(r[8]), str(r[9]),
                             str(r[10]), float(str(r[11]))) for r in rows]
