"""What every source kind hands the backup job: what restic should read, and how."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class BackupPlan:
    """Either paths to read, or a command whose stdout restic stores (--stdin-from-command)."""

    paths: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)
    one_file_system: bool = False
    stdin_command: list[str] | None = None
    stdin_filename: str | None = None
    command_env: dict[str, str] = field(default_factory=dict)
    extra_tags: list[str] = field(default_factory=list)
    cwd: str | None = None
    cleanup: list[Callable[[], None]] = field(default_factory=list)

    def run_cleanup(self) -> None:
        for action in reversed(self.cleanup):
            action()
