"""restore --all-sources as a plan and its execution (#15 item 7): one failing source does not
stop the others, and the exit code says the worst thing that happened, in a fixed order."""

from __future__ import annotations

from pathlib import Path

from drbackup.errors import ExitCode, SourceMissingError
from drbackup.jobs.restore_all import (
    AllSourcesPlan,
    PlannedSource,
    RefusedSnapshot,
    execute_all_sources,
)


def _plan(*sources: str, missing: tuple[str, ...] = (),
          refused: tuple[RefusedSnapshot, ...] = ()) -> AllSourcesPlan:
    planned = tuple(PlannedSource(s, None, Path("/t") / s) for s in sources)  # type: ignore[arg-type]
    return AllSourcesPlan("planning", Path("/t"), None, planned, missing, refused)


def test_a_failure_does_not_stop_the_others_and_its_code_wins() -> None:
    seen: list[str] = []

    def restore_one(item: PlannedSource) -> int:
        seen.append(item.source)
        if item.source == "b":
            raise SourceMissingError("gone", "hint")
        return 2 if item.source == "c" else 0

    failures: list[str] = []
    outcome = execute_all_sources(_plan("a", "b", "c", missing=("d",)), restore_one,
                                  lambda item, exc: failures.append(item.source))
    assert seen == ["a", "b", "c"] and failures == ["b"]
    assert outcome.restored == ["a", "c"] and outcome.errors == 2
    assert outcome.exit_code == ExitCode.SOURCE_MISSING


def test_exit_code_order_refused_then_missing_then_partial() -> None:
    refused = (RefusedSnapshot("f" * 64, "bad tag"),)
    assert execute_all_sources(_plan("a", missing=("d",), refused=refused), lambda i: 1,
                               lambda i, e: None).exit_code == ExitCode.TARGET_REFUSED
    assert execute_all_sources(_plan("a", missing=("d",)), lambda i: 1,
                               lambda i, e: None).exit_code == ExitCode.NOT_FOUND
    assert execute_all_sources(_plan("a"), lambda i: 1,
                               lambda i, e: None).exit_code == ExitCode.PARTIAL
    assert execute_all_sources(_plan("a"), lambda i: 0, lambda i, e: None).exit_code == 0
