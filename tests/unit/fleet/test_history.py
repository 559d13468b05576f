"""The bounded history of a fleet summary: the worst RPO per slice (a breaching gap never hidden
by sampling), the newest drills; parsed strictly: hostile, oversized or out-of-range history
makes the summary malformed (never good), and a summary without history still parses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from drbackup.fleet.history import (
    MAX_DRILLS,
    MAX_HISTORY_BYTES,
    RPO_SLICES,
    SourceHistory,
    drill_points,
    rpo_points,
)
from drbackup.fleet.summary import AgencySummary, MalformedSummary, SourceStatus, parse_summary
from drbackup.fleet.trust import Keyring, Trust, judge
from drbackup.verify.evidence import EvidenceKey, public_pem

NOW = 1_800_000_000.0
DAY = 86400.0


def _report(history: object, **extra: object) -> dict[str, Any]:
    summary = AgencySummary(
        host="host-a", agency="planning", sequence=5, published_at=NOW, valid_seconds=3600,
        drbackup_version="0.1.0", verdict="good", level_met=1, level_required=None,
        sources=[SourceStatus("docs", "directory", NOW - 600, 600.0, DAY, NOW - DAY, 30.0,
                              DAY, 1, [])], verify_max_age_seconds=8 * DAY)
    report = summary.to_report()
    report["sources"][0]["history"] = history
    return report | extra


def test_worst_rpo_per_slice_shows_the_gap_hourly_backups_around_it_would_hide() -> None:
    # Hourly backups for 30 days, but none for 30 h from day 10 on; the last one 2 h ago.
    times = [NOW - 30 * DAY - 7200 + h * 3600 for h in range(30 * 24)]
    gap_start = NOW - 20 * DAY
    times = [t for t in times if not gap_start < t < gap_start + 30 * 3600] + [NOW - 7200]
    points = rpo_points(times, NOW)
    assert len(points) == RPO_SLICES and points[-1][0] == NOW
    assert max(p[1] for p in points) == pytest.approx(30 * 3600, abs=3600)
    breached = [p for p in points if p[1] > DAY]
    assert len(breached) == 1 and gap_start < breached[0][0] <= gap_start + 2 * DAY
    assert points[-1][1] == 7200  # the age at publication, the last slice's worst
    assert all(p[1] <= 3600 for p in points[:9])


def test_no_point_before_the_first_good_backup_and_one_before_the_window_counts() -> None:
    assert rpo_points([], NOW) == []
    late = rpo_points([NOW - 2.5 * DAY], NOW)
    assert [p[0] for p in late] == [NOW - 2 * DAY, NOW - DAY, NOW]
    assert [p[1] for p in late] == [0.5 * DAY, 1.5 * DAY, 2.5 * DAY]
    anchored = rpo_points([NOW - 31 * DAY, NOW - 0.5 * DAY], NOW)
    assert len(anchored) == RPO_SLICES and anchored[0][1] == 2 * DAY
    assert anchored[-1][1] == 30.5 * DAY  # the gap that ends in the last slice


def test_drills_the_newest_thirty_oldest_first_rounded() -> None:
    drills = [(NOW - i * 3600.0, "ok", 12.345) for i in range(40)]
    points = drill_points(drills)
    assert len(points) == MAX_DRILLS and points[-1] == [NOW, "ok", 12.3]
    assert points[0][0] == NOW - 29 * 3600


def test_a_full_history_fits_its_bound_and_round_trips() -> None:
    history = SourceHistory(
        30 * DAY, [[NOW - i * DAY, 99999999.0] for i in reversed(range(RPO_SLICES))],
        [[NOW - i * 3600.0, "suspect", 86399.9] for i in reversed(range(MAX_DRILLS))])
    report = _report(history.__dict__)
    assert len(json.dumps(report["sources"][0]["history"])) < MAX_HISTORY_BYTES / 2
    # The longest numbers JSON writes: 30 + 30 points still fit the bound by their count.
    longest = {"window_seconds": 30 * DAY + 1e-9,
               "rpo": [[NOW + 0.000000123, 1.0000000000000002]] * RPO_SLICES,
               "drills": [[NOW + 0.000000123, "suspect", 0.10000000000000002]] * MAX_DRILLS}
    assert len(json.dumps(longest)) < MAX_HISTORY_BYTES
    parsed = parse_summary(report)
    assert parsed.sources[0].history == history
    assert parsed.verify_max_age_seconds == 8 * DAY


def test_a_summary_without_history_or_limit_still_parses_as_none() -> None:
    report = _report(None)
    del report["sources"][0]["history"], report["verify_max_age_seconds"]
    parsed = parse_summary(report)
    assert parsed.sources[0].history is None and parsed.verify_max_age_seconds is None


GOOD = {"window_seconds": 30 * DAY, "rpo": [[NOW, 600.0]], "drills": [[NOW, "ok", 30.0]]}


@pytest.mark.parametrize("hostile", [
    GOOD | {"note": "/srv/planning/secret.doc"},  # an extra field: free text
    {"window_seconds": 30 * DAY, "rpo": []},  # a field missing
    GOOD | {"rpo": [[NOW - i, 1.0] for i in reversed(range(RPO_SLICES + 1))]},  # too many
    GOOD | {"drills": [[NOW, "ok", 1.0]] * (MAX_DRILLS + 1)},
    GOOD | {"drills": [[NOW, "restore of /srv/x failed", None]]},  # not a code
    GOOD | {"drills": [[NOW, "ok", "30s"]]},
    GOOD | {"drills": [[NOW, "ok", -1.0]]},
    GOOD | {"rpo": [[NOW, 600.0, "extra"]]},
    GOOD | {"rpo": [[NOW + DAY, 600.0]]},  # after publication
    GOOD | {"rpo": [[NOW - 60 * DAY, 600.0]]},  # before the window
    GOOD | {"rpo": [[NOW, 60.0], [NOW - DAY, 60.0]]},  # out of order
    GOOD | {"rpo": [[True, 60.0]]},
    GOOD | {"window_seconds": 1e12},
    GOOD | {"rpo": [[NOW, 600.0, "x" * MAX_HISTORY_BYTES]]},  # oversized
    [[NOW, 600.0]],
    "none",
])
def test_hostile_or_oversized_history_is_malformed_never_good(
        tmp_path: Path, hostile: object) -> None:
    report = _report(hostile)
    with pytest.raises(MalformedSummary):
        parse_summary(report)
    key = EvidenceKey.load_or_create(tmp_path / "k")
    ring = tmp_path / "ring"
    ring.mkdir()
    (ring / "a.pem").write_bytes(public_pem(key.public_key))
    judged = judge(json.dumps(key.sign(report)).encode(), Keyring.load(ring), now=NOW + 60)
    assert judged.trust is Trust.MALFORMED and judged.summary is None


@pytest.mark.parametrize("limit", [0, -1.0, "8d", True, 1e12])
def test_a_hostile_drill_age_limit_is_malformed(limit: object) -> None:
    with pytest.raises(MalformedSummary):
        parse_summary(_report(GOOD, verify_max_age_seconds=limit))
