"""The verdict on one snapshot: clean or suspect, with a reason a person can check for every
rule that fired and the numbers behind it (pure: signals, settings and history in, verdict out).

Rules (each names its signal; `T` is max(min_hits, min(floor(hit_share x files), hit_files))):
- content: files that look encrypted (sampled, incompressible, earlier victims still there,
  and the sample's share carried over to the changed files it did not reach) >= T;
- notes: ransom notes in >= note_dirs directories;
- extensions: new files with a known ransomware extension >= min_hits;
- renames: renames (gone + new of the same size and stem) that rewrote the bytes >= T;
- deletion: >= T and >= hit_share of the files gone, with a ransom note;
- churn (after the learning period): the share of files modified or gone above both
  churn_floor and churn_factor x the source's own churn percentile over its recent clean
  snapshots, with any other sign of an attack (never on churn alone: updates and
  reorganisations churn too).
A false alarm released with --false-alarm teaches the source: each rule that fired gets an
allowance 25 % above what it saw, so the same workload passes and a larger one does not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from drbackup.guard.signals import Signals

RULES = ("content", "notes", "extensions", "renames", "deletion", "churn")
ALLOWANCE_MARGIN = 1.25


@dataclass(frozen=True)
class Thresholds:
    hit_share: float = 0.05
    hit_files: int = 200
    min_hits: int = 5
    note_dirs: int = 3
    learning_backups: int = 7
    churn_percentile: float = 95.0
    churn_factor: float = 3.0
    churn_floor: float = 0.05


@dataclass(frozen=True)
class History:
    """What the source's earlier verdicts say: churn of its recent clean snapshots (oldest
    first), how many snapshots were assessed, and allowances learned from false alarms."""

    clean_churn: Sequence[float] = ()
    assessed: int = 0
    allowances: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    suspect: bool
    rules: tuple[str, ...]  # the rules that fired
    reasons: tuple[str, ...]  # one line each; for a clean verdict, the notable numbers
    numbers: dict[str, Any]
    values: dict[str, float]  # each rule's measured value (what an allowance is learned from)

    @property
    def verdict(self) -> str:
        return "suspect" if self.suspect else "clean"


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _n(value: int) -> str:
    return f"{value:,}"


def _pct(value: float) -> str:
    return f"{value * 100:.0f} %" if value >= 0.01 or value == 0 else f"{value * 100:.1f} %"


def hit_threshold(files: int, t: Thresholds) -> int:
    """hit_share of the files rounded down (an attack on 5 % of 2,024 files, 101 of them, is
    one), capped at hit_files, at least min_hits."""
    return max(t.min_hits, min(math.floor(t.hit_share * files), t.hit_files))


def assess(s: Signals, t: Thresholds, history: History) -> Verdict:
    files = max(s.files, s.parent_files or 0)
    limit = hit_threshold(files, t)
    values: dict[str, float] = {
        "content": s.hits, "notes": s.note_dirs, "extensions": s.ransom_extensions,
        "renames": s.renames_changed, "deletion": s.gone, "churn": s.churn or 0.0}
    fired: list[str] = []
    reasons: list[str] = []

    def over(rule: str, value: float, threshold: float) -> bool:
        allowance = history.allowances.get(rule)
        return value >= threshold and (allowance is None or value > allowance)

    if over("content", s.hits, limit):
        fired.append("content")
        parts = [f"{_n(s.encrypted)} of {_n(s.sampled)} sampled look encrypted (magic "
                 f"mismatch {_n(s.magic_mismatch)}, random {_n(s.random)})"]
        if s.incompressible:
            parts.append(f"{_n(s.incompressible)} more changed text files did not compress")
        if s.prior_encrypted:
            parts.append(f"{_n(s.prior_encrypted)} found encrypted by earlier backups")
        if s.estimated:
            parts.append(f"about {_n(s.estimated)} more among the changed files not sampled")
        reasons.append(f"{'; '.join(parts)}: about {_n(s.hits)} of {_n(files)} files "
                       f"(threshold {_n(limit)})")
    if over("notes", s.note_dirs, t.note_dirs):
        fired.append("notes")
        reasons.append(f"ransom note {', '.join(s.note_names)} in {_n(s.note_dirs)} "
                       f"directories")
    if over("extensions", s.ransom_extensions, t.min_hits):
        fired.append("extensions")
        reasons.append(f"{_n(s.ransom_extensions)} new files with a ransomware extension "
                       f"({', '.join(s.extension_names)})")
    if over("renames", s.renames_changed, limit):
        fired.append("renames")
        reasons.append(f"{_n(s.renames_changed)} files renamed with their bytes rewritten "
                       f"({_n(s.renames)} renames in all; threshold {_n(limit)})")
    parent = s.parent_files or 0
    if parent and s.gone / parent >= t.hit_share and s.notes \
            and over("deletion", s.gone, limit):
        fired.append("deletion")
        reasons.append(f"{_n(s.gone)} of {_n(parent)} files gone ({_pct(s.gone / parent)}) "
                       "with a ransom note left behind")
    churn = s.churn
    baseline: float | None = None
    if churn is not None and history.assessed >= t.learning_backups:
        baseline = percentile(history.clean_churn, t.churn_percentile)
        churn_limit = max(t.churn_floor, baseline * t.churn_factor)
        corroborated = bool(s.hits or s.notes or s.ransom_extensions
                            or s.renames_changed)
        if churn > churn_limit and corroborated and over("churn", churn, churn_limit):
            fired.append("churn")
            reasons.append(
                f"{_n(s.modified + s.gone)} of {_n(parent)} files changed or gone "
                f"({_pct(churn)}, baseline p{t.churn_percentile:g} {_pct(baseline)}, limit "
                f"{_pct(churn_limit)}) with signs of encryption or a ransom note")
    if not fired:
        reasons.append(_clean_line(s, baseline, t))
    numbers = _numbers(s, limit, baseline)
    return Verdict(bool(fired), tuple(fired), tuple(reasons), numbers, values)


def _clean_line(s: Signals, baseline: float | None, t: Thresholds) -> str:
    line = (f"{_n(s.modified)} modified, {_n(s.new)} new, {_n(s.gone)} gone of "
            f"{_n(s.files)} files; {_n(s.encrypted)} of {_n(s.sampled)} sampled look encrypted")
    if s.churn is not None:
        line += f"; churn {_pct(s.churn)}"
        line += (f" (baseline p{t.churn_percentile:g} {_pct(baseline)})" if baseline is not None
                 else " (learning the baseline)")
    return line


def _numbers(s: Signals, limit: int, baseline: float | None) -> dict[str, Any]:
    return {
        "files": s.files, "parent_files": s.parent_files, "new": s.new, "modified": s.modified,
        "gone": s.gone, "ignored": s.ignored, "churn": None if s.churn is None else round(
            s.churn, 4), "churn_baseline": None if baseline is None else round(baseline, 4),
        "sampled": s.sampled, "sample_bytes_read": s.bytes_read, "sample_unreadable":
        s.unreadable, "encrypted": s.encrypted, "magic_mismatch": s.magic_mismatch,
        "random": s.random, "incompressible": s.incompressible, "prior_encrypted":
        s.prior_encrypted, "estimated": s.estimated, "hits": s.hits, "hit_threshold": limit,
        "ransom_notes": s.notes, "ransom_note_dirs": s.note_dirs, "ransom_note_names":
        s.note_names, "broad_notes": s.broad_notes, "ransom_extensions": s.ransom_extensions,
        "ransom_extension_names": s.extension_names, "renames": s.renames, "renames_changed":
        s.renames_changed, "data_added": s.data_added, "data_added_packed": s.data_added_packed,
        "stored_ratio": None if s.stored_ratio is None else round(s.stored_ratio, 3),
        "examples": s.examples,
    }


def learned(verdict_values: Mapping[str, float], rules: Sequence[str],
            allowances: Mapping[str, float]) -> dict[str, float]:
    """Allowances after a false alarm: each rule that fired tolerates 25 % more than it saw."""
    taught = dict(allowances)
    for rule in rules:
        value = float(verdict_values.get(rule, 0.0))
        taught[rule] = max(taught.get(rule, 0.0), value * ALLOWANCE_MARGIN)
    return taught
