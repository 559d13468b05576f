"""The pure parts of bench/fleet_scale.py: the round-robin bounds, the slots' idle time replayed
from a storm's snapshots, and the extrapolation rows."""

from __future__ import annotations

import pytest

from bench import fleet_scale
from bench.fleet_scale import Figures, Storm, _slot_idle, results


def test_slot_idle_replays_two_slots() -> None:
    # Two slots: a (0-2) and b (0-1); c starts at 1.5 on b's slot (idle 0.5), d at 2 on a's.
    assert _slot_idle([(0.0, 2.0), (0.0, 1.0), (1.5, 3.0), (2.0, 4.0)]) == pytest.approx(0.5)
    assert _slot_idle([(0.0, 1.0), (0.0, 1.0), (1.0, 2.0), (1.0, 2.0)]) == 0.0


def test_bounds() -> None:
    storm = Storm(waits=[2.0, 3.5], durations=[1.0, 2.0, 3.0], slot_idle=0.0,
                  first_round_ok=True, write_seconds=0.01)
    assert fleet_scale.PARALLELISM == 2
    assert storm.round_robin_bound == pytest.approx(fleet_scale.DEBOUNCE_SECONDS + 3.0)
    assert storm.list_scheduling_bound == pytest.approx(storm.round_robin_bound + 1.5)
    assert storm.longest == 3.5


def test_results_extrapolate_linearly_per_agency() -> None:
    base = Figures(1, ready_seconds=1.0, startup_round_seconds=2.0, rss_mib=[50.0],
                   cpu_percent=0.1, idle_seconds=60, scrape_ms=[1.0] * 100)
    fleet = Figures(60, ready_seconds=1.59, startup_round_seconds=60.0, rss_mib=[55.9],
                    cpu_percent=0.69, idle_seconds=60, scrape_ms=[10.0] * 100,
                    storms=[Storm([10.0], [1.0] * 10, 0.1, True, 0.01)])
    rows = {(r.group.split(",")[0], r.name): r for r in results(base, fleet, {60: [0.2]})}
    extra = "extrapolated to 500 agencies x 3 sources"
    # 0.01 s, 0.1 MB, 0.01 % per agency above the one-agency daemon, times 499
    assert rows[(extra, "start-up to ready")].median == pytest.approx(1.0 + 0.01 * 499)
    assert rows[(extra, "idle RSS")].median == pytest.approx(50.0 + 0.1 * 499)
    assert rows[(extra, "idle CPU")].median == pytest.approx(0.1 + 0.01 * 499)
    wait = rows[(extra, "every source changes at once: longest wait (round-robin bound)")]
    assert wait.median == pytest.approx(fleet_scale.DEBOUNCE_SECONDS + 1500 * 1.0 / 2)
    storm = rows[("one daemon", "every source changes at once: longest wait until its "
                  "snapshot")]
    assert storm.ratio == pytest.approx(10.0 / (fleet_scale.DEBOUNCE_SECONDS + 5.0))
