"""The verdict (#16): each rule fires on its own signal at its threshold and not one below,
churn only after the learning period and never alone, allowances learned from a false alarm
pass the same workload and not a larger one, and a clean-only workload is never suspect."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import strategies as st

from drbackup.guard.signals import Signals
from drbackup.guard.verdict import (
    ALLOWANCE_MARGIN,
    History,
    Thresholds,
    assess,
    hit_threshold,
    learned,
    percentile,
)
from tests.support.fuzz import fuzz_pair

T = Thresholds()  # hit_share 5 %, hit_files 200, min_hits 5, note_dirs 3, learning 7
LEARNED = History(clean_churn=[0.01] * 10, assessed=10)


def _signals(**changes: Any) -> Signals:
    """1,000 files, as many before; nothing changed unless said."""
    return dataclasses.replace(Signals(files=1000, parent_files=1000), **changes)


@pytest.mark.parametrize(("files", "threshold"), [
    (0, 5), (40, 5), (100, 5), (119, 5), (120, 6), (2024, 101), (1000, 50), (4000, 200),
    (10**6, 200)])
def test_hit_threshold_is_a_share_capped_at_hit_files_and_at_least_min_hits(
        files: int, threshold: int) -> None:
    assert hit_threshold(files, T) == threshold


def test_a_quiet_backup_is_clean() -> None:
    verdict = assess(_signals(modified=3, new=2, sampled=5), T, LEARNED)
    assert not verdict.suspect and verdict.verdict == "clean" and verdict.rules == ()
    assert verdict.reasons == ("3 modified, 2 new, 0 gone of 1,000 files; 0 of 5 sampled look "
                               "encrypted; churn 0.3 % (baseline p95 1 %)",)
    assert verdict.numbers["hit_threshold"] == 50 and verdict.numbers["churn_baseline"] == 0.01


@pytest.mark.parametrize(("rule", "signal", "at"), [
    ("content", "hits", 50),
    ("notes", "note_dirs", 3),
    ("extensions", "ransom_extensions", 5),
    ("renames", "renames_changed", 50),
])
def test_each_rule_fires_at_its_threshold_and_not_one_below(
        rule: str, signal: str, at: int) -> None:
    below = assess(_signals(**{signal: at - 1}), T, History())
    assert not below.suspect, below.reasons
    fired = assess(_signals(**{signal: at}), T, History())
    assert fired.suspect and fired.rules == (rule,)
    assert fired.values[rule] == at
    assert len(fired.reasons) == 1


def test_the_content_reason_names_every_part_of_the_count() -> None:
    verdict = assess(_signals(sampled=40, encrypted=30, magic_mismatch=10, random=20,
                              incompressible=5, prior_encrypted=3, estimated=12, hits=50),
                     T, History())
    assert verdict.reasons == (
        "30 of 40 sampled look encrypted (magic mismatch 10, random 20); 5 more changed text "
        "files did not compress; 3 found encrypted by earlier backups; about 12 more among "
        "the changed files not sampled: about 50 of 1,000 files (threshold 50)",)


def test_the_threshold_counts_the_larger_of_the_files_before_and_now() -> None:
    # 1,000 files encrypted into 1,000 new names and the old ones deleted: 2,000 seen.
    assert assess(_signals(files=100, hits=49), T, History()).suspect is False
    assert assess(_signals(files=2000, parent_files=1000, hits=99), T, History()).rules == ()
    assert assess(_signals(files=2000, parent_files=1000, hits=100), T,
                  History()).rules == ("content",)


def test_notes_and_extensions_reasons_name_what_was_found() -> None:
    verdict = assess(_signals(notes=4, note_dirs=3, note_names=["README_DECRYPT.txt"],
                              ransom_extensions=7, extension_names=[".locked"]), T, History())
    assert verdict.rules == ("notes", "extensions")
    assert verdict.reasons == ("ransom note README_DECRYPT.txt in 3 directories",
                               "7 new files with a ransomware extension (.locked)")


def test_deletion_needs_a_note_and_the_hit_share_of_the_files() -> None:
    # 50 of 1,000 gone: the threshold and 5 % of the files.
    assert assess(_signals(gone=50), T, History()).rules == ()
    assert assess(_signals(gone=50, notes=1, note_dirs=1), T, History()).rules == ("deletion",)
    # A broad note (*_readme.txt) alone is an ordinary file now and then: not enough.
    assert assess(_signals(gone=50, broad_notes=1), T, History()).rules == ()
    assert assess(_signals(gone=49, notes=1, note_dirs=1), T, History()).rules == ()
    # 10,000 files: the threshold is 200, but 200 gone is 2 %: not a mass deletion.
    big = dict(files=10000, parent_files=10000, notes=1, note_dirs=1)
    assert assess(_signals(gone=200, **big), T, History()).rules == ()
    assert assess(_signals(gone=499, **big), T, History()).rules == ()
    fired = assess(_signals(gone=500, **big), T, History())
    assert fired.rules == ("deletion",)
    assert fired.reasons == ("500 of 10,000 files gone (5 %) with a ransom note left behind",)
    # No earlier listing: nothing can be gone.
    assert assess(_signals(parent_files=None, gone=0, notes=1), T, History()).rules == ()


def test_churn_needs_the_learning_period_corroboration_and_to_exceed_its_limit() -> None:
    # Baseline p95 of 1 % churn x 3 = 3 %, under the floor of 5 %: the limit is 5 %.
    sign = dict(hits=1)
    assert assess(_signals(modified=50, **sign), T, LEARNED).rules == ()  # 5 %: not above
    fired = assess(_signals(modified=51, **sign), T, LEARNED)
    assert fired.rules == ("churn",)
    assert fired.reasons == ("51 of 1,000 files changed or gone (5 %, baseline p95 1 %, limit "
                             "5 %) with signs of encryption or a ransom note",)
    assert fired.values["churn"] == pytest.approx(0.051)
    # Gone files churn too.
    assert assess(_signals(modified=20, gone=31, **sign), T, LEARNED).rules == ("churn",)
    # Never on churn alone: a reorganisation or an update churns.
    assert assess(_signals(modified=900), T, LEARNED).rules == ()
    for other in ({"notes": 1}, {"ransom_extensions": 1}, {"renames_changed": 1}):
        assert assess(_signals(modified=900, **other), T, LEARNED).rules == ("churn",), other
    assert assess(_signals(modified=900, broad_notes=1), T, LEARNED).rules == ()
    # Still learning: 6 assessed backups of 7.
    learning = History(clean_churn=[0.01] * 6, assessed=6)
    verdict = assess(_signals(modified=900, hits=1), T, learning)
    assert verdict.rules == ()
    assert verdict.reasons[0].endswith("churn 90 % (learning the baseline)")
    assert verdict.numbers["churn_baseline"] is None
    assert assess(_signals(modified=900, hits=1), T, History(
        clean_churn=[0.01] * 6, assessed=7)).rules == ("churn",)


def test_a_busy_source_has_a_higher_churn_limit() -> None:
    # p95 of 10 % x 3 = 30 %.
    busy = History(clean_churn=[0.02] * 5 + [0.1] * 15, assessed=20)
    assert assess(_signals(modified=300, hits=1), T, busy).rules == ()
    assert assess(_signals(modified=301, hits=1), T, busy).rules == ("churn",)


def test_the_clean_line_mentions_learning_until_the_learning_period_ends() -> None:
    for assessed in range(7):
        line = assess(_signals(modified=10), T, History([0.01] * assessed, assessed)).reasons
        assert line == ("10 modified, 0 new, 0 gone of 1,000 files; 0 of 0 sampled look "
                        "encrypted; churn 1 % (learning the baseline)",)
    learned = assess(_signals(modified=10), T, History([0.01] * 7, 7)).reasons[0]
    assert "learning" not in learned and learned.endswith("(baseline p95 1 %)")
    # A first backup has no churn at all.
    first = assess(Signals(files=10, new=10, sampled=10), T, History())
    assert first.reasons == ("0 modified, 10 new, 0 gone of 10 files; 0 of 10 sampled look "
                             "encrypted",)


@pytest.mark.parametrize(("rule", "changes", "allowance", "passes", "fires"), [
    ("content", "hits", 62.5, 62, 63),
    ("notes", "note_dirs", 3.75, 3, 4),
    ("extensions", "ransom_extensions", 10.0, 10, 11),
    ("renames", "renames_changed", 80.0, 80, 81),
    ("deletion", "gone", 100.0, 100, 101),
])
def test_an_allowance_suppresses_exactly_the_values_up_to_it(
        rule: str, changes: str, allowance: float, passes: int, fires: int) -> None:
    history = History(allowances={rule: allowance})
    extra = {"notes": 1} if rule == "deletion" else {}
    assert assess(_signals(**{changes: passes}, **extra), T, history).rules == ()
    assert assess(_signals(**{changes: fires}, **extra), T, history).rules == (rule,)
    # Another rule's allowance suppresses nothing here.
    other = History(allowances={"churn": 1.0})
    assert assess(_signals(**{changes: passes}, **extra), T, other).rules == (rule,)


def test_a_churn_allowance_passes_the_churn_it_saw_plus_the_margin() -> None:
    history = History(clean_churn=[0.01] * 10, assessed=10, allowances={"churn": 0.5})
    assert assess(_signals(modified=500, hits=1), T, history).rules == ()
    assert assess(_signals(modified=501, hits=1), T, history).rules == ("churn",)


def test_learned_teaches_the_fired_rules_a_quarter_more_than_they_saw() -> None:
    verdict = assess(_signals(hits=80, note_dirs=4, modified=10), T, History())
    assert verdict.rules == ("content", "notes")
    taught = learned(verdict.values, verdict.rules, {})
    assert taught == {"content": 100.0, "notes": 5.0}
    assert ALLOWANCE_MARGIN == 1.25
    # What was learned before stays when larger; other rules keep theirs.
    again = learned(verdict.values, verdict.rules, {"content": 150.0, "renames": 7.0})
    assert again == {"content": 150.0, "notes": 5.0, "renames": 7.0}
    # The same workload then passes; a clearly larger one does not.
    history = History(allowances=taught)
    assert not assess(_signals(hits=100, note_dirs=5), T, history).suspect
    assert assess(_signals(hits=101, note_dirs=5), T, history).rules == ("content",)


@pytest.mark.parametrize(("values", "pct", "expected"), [
    ([], 95, 0.0),
    ([0.3], 95, 0.3),
    ([0.3], 1, 0.3),
    ([4, 1, 3, 2], 50, 2),
    ([4, 1, 3, 2], 25, 1),
    ([4, 1, 3, 2], 26, 2),
    ([4, 1, 3, 2], 75, 3),
    ([4, 1, 3, 2], 95, 4),
    ([4, 1, 3, 2], 100, 4),
    ([10, 20, 30, 40, 50], 40, 20),
    ([10, 20, 30, 40, 50], 41, 30),
    ([10, 20, 30, 40, 50], 0.1, 10),
    ([5, 5, 1], 50, 5),
])
def test_percentile_is_nearest_rank(values: list[float], pct: float, expected: float) -> None:
    assert percentile(values, pct) == expected


# Property: whatever a workload modifies, adds and deletes, with whatever history, when none
# of its files look encrypted and none bear a ransomware name, the verdict is clean.
_counts = st.integers(0, 10**6)


def _clean_workload(parent: int | None, files: int, modified: int, new: int, gone: int,
                    sampled: int, history: History) -> None:
    s = Signals(files=files, parent_files=parent, modified=modified, new=new, gone=gone,
                sampled=sampled, renames=min(new, gone))
    verdict = assess(s, T, history)
    assert not verdict.suspect and verdict.rules == () and len(verdict.reasons) == 1


_histories = st.builds(
    History, st.lists(st.floats(0, 1), max_size=40), st.integers(0, 100),
    st.dictionaries(st.sampled_from(["content", "churn", "notes"]), st.floats(0, 10)))

test_a_clean_workload_is_never_suspect, test_a_clean_workload_is_never_suspect_long = \
    fuzz_pair(_clean_workload, st.none() | _counts, _counts, _counts, _counts, _counts,
              _counts, _histories, examples=200)
