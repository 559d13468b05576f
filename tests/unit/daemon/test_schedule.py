"""Schedule strings: parsing, next run times, jitter; `config check` rejects bad ones."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from drbackup.config.schedule import Cron, Interval, parse_schedule
from drbackup.daemon.schedule import jitter_fraction, next_run
from tests.support.workspace import Workspace


def _local(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC).astimezone()


@pytest.mark.parametrize("text", ["hourly", "daily", "daily 02:00", "daily at 2:30", "weekly",
                                  "every 15m", "every 2s", "every 1h30m", "*/5 * * * *",
                                  "30 2 * * 1-5", "0 0 1,15 * *", "0 12 * * 7"])
def test_accepted(text: str) -> None:
    parse_schedule(text)


@pytest.mark.parametrize("text", ["", "sometimes", "daily 25:00", "every 0s", "every x",
                                  "61 * * * *", "* * * *", "*/0 * * * *", "a b c d e"])
def test_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_schedule(text)


def test_interval_lines_up_on_the_epoch_and_is_strictly_after() -> None:
    assert next_run("every 15m", 900.0) == 1800.0
    assert next_run("every 15m", 899.0) == 900.0
    assert isinstance(parse_schedule("every 2s"), Interval)


def test_daily_fires_at_the_local_time() -> None:
    start = datetime(2026, 3, 10, 12, 0, tzinfo=UTC).timestamp()
    fired = _local(next_run("daily 02:00", start))
    assert (fired.hour, fired.minute) == (2, 0)
    assert 0 < fired.timestamp() - start <= 86400


def test_cron_weekdays_and_steps() -> None:
    parsed = parse_schedule("30 2 * * 1-5")
    assert isinstance(parsed, Cron)
    when = datetime(2026, 11, 28, 12, 0, tzinfo=UTC).timestamp()  # a Saturday
    fired = _local(next_run(parsed, when))
    assert fired.isoweekday() in range(1, 6) and (fired.hour, fired.minute) == (2, 30)
    every5 = _local(next_run("*/5 * * * *", when))
    assert every5.minute % 5 == 0


def test_jitter_is_stable_bounded_and_spreads_sources() -> None:
    assert jitter_fraction("a/b") == jitter_fraction("a/b")
    base = next_run("hourly", 0.0)
    assert _local(base).minute == 0 and 0 < base <= 3600
    # Each source's run is the hour's start plus its own jitter (≤ 10 % of an hour).
    runs = {next_run("hourly", base - 1, key=f"agency-{i}/s", max_jitter=600) for i in range(50)}
    assert len(runs) == 50
    assert all(base <= r <= base + 360.0 for r in runs)
    small = next_run("every 2s", 100.0, key="x", max_jitter=600)
    assert 100.0 < small <= 102.2


def test_config_check_rejects_a_bad_schedule(workspace: Workspace, tmp_path: Path) -> None:
    workspace.add_agency("planning")
    workspace.add_directory_source("planning", "docs", [tmp_path], schedule="every tuesday")
    result = workspace.cli("config", "check")
    assert result.returncode == 4
    assert "agencies[0].sources[0].schedule" in result.stderr
    assert "every tuesday" in result.stderr
