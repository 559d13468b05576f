"""What the metrics need from a running daemon: values that only exist in its memory (queue,
watchers, scheduler). The daemon's live-status object satisfies this protocol structurally."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class LiveView(Protocol):
    def jobs_running(self) -> int:
        """Jobs running now."""
        ...

    def jobs_queued(self) -> int:
        """Jobs waiting for a slot."""
        ...

    def pending_changes(self) -> dict[tuple[str, str], int]:
        """(agency, source) -> file changes not yet backed up."""
        ...

    def watch_overflows(self) -> dict[tuple[str, str], int]:
        """(agency, source) -> watcher queue overflows since the daemon started."""
        ...

    def next_runs(self) -> dict[tuple[str, str], float]:
        """(agency, source) -> Unix time of the next scheduled backup."""
        ...
