"""Invoker's wait for a locked repository (engine/invoke.py), against a scripted restic and a
fake clock: rounds of `--retry-lock` with `restic unlock` between them, so a lock whose process
dies during the wait costs one round, not the whole lock_wait (issue #21 §2)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from drbackup.config.units import parse_duration
from drbackup.engine import invoke as invoke_module
from drbackup.engine.invoke import Invoker, ResticSettings
from drbackup.engine.jsonlines import parse_lines
from drbackup.engine.models import RepoTarget
from drbackup.engine.runner import ProcessResult

TARGET = RepoTarget("/srv/repo", Path("/etc/drbackup/a.pw"), label="a@local")


class FakeRestic:
    """restic as the invoker sees it: `unlock` removes what `stale` says at each call; any
    other command exits 11 while `locked_until` (fake seconds) is ahead, waiting out its
    --retry-lock first, as restic does on a lock it never looks at again."""

    def __init__(self, locked_until: float, stale: Sequence[int | None] = ()):
        self.now = 0.0
        self.locked_until = locked_until
        self.stale = list(stale)
        self.calls: list[list[str]] = []

    def monotonic(self) -> float:
        return self.now

    def run(self, argv: Sequence[str], env: Mapping[str, str], **_: Any) -> ProcessResult:
        command = list(argv)
        self.calls.append(command)
        if command[1:] == ["unlock"]:
            removed = self.stale.pop(0) if self.stale else 0
            if removed is None:
                return _result(command, 1)
            return _result(command, 0, [f"successfully removed {removed} locks"] if removed
                           else [])
        wait = 0.0
        if "--retry-lock" in command:
            wait = parse_duration(command[command.index("--retry-lock") + 1]).total_seconds()
        if self.now + wait < self.locked_until:
            self.now += wait
            return _result(command, 11)
        self.now = max(self.now, self.locked_until)
        return _result(command, 0, ["[]"])

    def retries(self) -> list[str]:
        """The --retry-lock value of every attempt, "" for one without."""
        return [c[c.index("--retry-lock") + 1] if "--retry-lock" in c else ""
                for c in self.calls if c[1:] != ["unlock"]]

    def unlocks(self) -> int:
        return sum(1 for c in self.calls if c[1:] == ["unlock"])


def _result(argv: list[str], code: int, out: Sequence[str] = (), *, timed_out: bool = False,
            terminated: bool = False) -> ProcessResult:
    return ProcessResult(argv, code, parse_lines(list(out)), parse_lines([]), 0.01, timed_out,
                         terminated)


def _snapshots(fake: FakeRestic, lock_wait: timedelta | None) -> ProcessResult:
    invoker = Invoker(ResticSettings(binary="restic", retry_lock=lock_wait), clock=fake.monotonic)
    with mock.patch.object(invoke_module, "run_process", fake.run):
        return invoker.run(TARGET, ["snapshots"], lock_retry=True)


def test_a_lock_that_turns_stale_during_the_wait_costs_one_round() -> None:
    # The holder was alive at the first unlock (nothing removed) and died holding its lock:
    # the unlock after the first round removes it, and the next round gets the lock at once.
    fake = FakeRestic(locked_until=float("inf"), stale=[0, 1])

    def run(argv: Sequence[str], env: Mapping[str, str], **options: Any) -> ProcessResult:
        if list(argv)[1:] == ["unlock"] and fake.unlocks() == 1:
            fake.locked_until = fake.now  # the second unlock removed the dead holder's lock
        return FakeRestic.run(fake, argv, env, **options)

    fake.run = run  # type: ignore[method-assign]
    result = _snapshots(fake, timedelta(minutes=2))
    assert result.returncode == 0
    assert fake.retries() == ["", "2s", "4s"]
    assert fake.unlocks() == 2
    assert fake.now == 2.0  # one round, not the two minutes of lock_wait


def test_a_live_lock_is_waited_for_in_growing_rounds_up_to_lock_wait() -> None:
    fake = FakeRestic(locked_until=float("inf"))
    result = _snapshots(fake, timedelta(minutes=2))
    assert result.returncode == 11
    assert fake.retries() == ["", "2s", "4s", "8s", "16s", "32s", "58s"]
    assert fake.unlocks() == 7  # after the first attempt and after every round
    assert fake.now == 120.0  # the whole lock_wait, no more


def test_a_live_lock_that_goes_away_is_taken_within_the_round() -> None:
    fake = FakeRestic(locked_until=5.0)
    result = _snapshots(fake, timedelta(minutes=2))
    assert result.returncode == 0
    assert fake.retries() == ["", "2s", "4s"]
    assert fake.now == 5.0


def test_rounds_never_ask_restic_for_days() -> None:
    # Go durations know no "d": a round is at most a minute, whatever lock_wait says.
    fake = FakeRestic(locked_until=float("inf"))
    result = _snapshots(fake, timedelta(days=2))
    assert result.returncode == 11
    assert fake.retries()[1:7] == ["2s", "4s", "8s", "16s", "32s", "1m"]
    assert all(parse_duration(r) <= timedelta(minutes=1) for r in fake.retries()[1:])
    assert fake.now == 2 * 86400.0


def test_a_stale_lock_is_removed_and_not_waited_on() -> None:
    fake = FakeRestic(locked_until=float("inf"), stale=[1])

    def run(argv: Sequence[str], env: Mapping[str, str], **options: Any) -> ProcessResult:
        if list(argv)[1:] == ["unlock"]:
            fake.locked_until = fake.now
        return FakeRestic.run(fake, argv, env, **options)

    fake.run = run  # type: ignore[method-assign]
    result = _snapshots(fake, timedelta(minutes=30))
    assert result.returncode == 0
    assert fake.now == 0.0
    assert fake.unlocks() == 1


@pytest.mark.parametrize(("stale", "attempts"), [([1], ["", ""]), ([0], [""])])
def test_without_lock_wait_one_plain_retry_after_removing_a_stale_lock(
        stale: list[int], attempts: list[str]) -> None:
    fake = FakeRestic(locked_until=float("inf"), stale=stale)
    result = _snapshots(fake, None)
    assert result.returncode == 11
    assert fake.retries() == attempts
    assert fake.now == 0.0


def test_unlock_failing_at_once_means_no_wait() -> None:
    # e.g. credentials that cannot delete: as before, no retry at all
    fake = FakeRestic(locked_until=float("inf"), stale=[None])
    assert _snapshots(fake, timedelta(minutes=2)).returncode == 11
    assert fake.retries() == [""]


def test_unlock_failing_later_does_not_end_the_wait() -> None:
    fake = FakeRestic(locked_until=10.0, stale=[0, None, 0])
    assert _snapshots(fake, timedelta(minutes=2)).returncode == 0
    assert fake.retries() == ["", "2s", "4s", "8s"]


@pytest.mark.parametrize("how", ["timed_out", "terminated"])
def test_a_stopped_attempt_is_not_retried(how: str) -> None:
    calls: list[list[str]] = []

    def run(argv: Sequence[str], env: Mapping[str, str], **_: Any) -> ProcessResult:
        calls.append(list(argv))
        return _result(list(argv), 11, timed_out=how == "timed_out",
                       terminated=how == "terminated")

    invoker = Invoker(ResticSettings(binary="restic", retry_lock=timedelta(minutes=2)))
    with mock.patch.object(invoke_module, "run_process", run):
        invoker.run(TARGET, ["snapshots"], lock_retry=True)
    assert calls == [["restic", "--json", "snapshots"]]


def test_without_lock_retry_a_conflict_is_returned_as_it_is() -> None:
    fake = FakeRestic(locked_until=float("inf"), stale=[1])
    invoker = Invoker(ResticSettings(binary="restic", retry_lock=timedelta(minutes=2)))
    with mock.patch.object(invoke_module, "run_process", fake.run):
        assert invoker.run(TARGET, ["init"]).returncode == 11
    assert fake.unlocks() == 0
