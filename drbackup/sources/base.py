"""What every source kind hands the backup job: what restic should read, and how."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from drbackup.errors import DumpFailedError


@dataclass
class BackupPlan:
    """Either paths to read, or a command whose stdout restic stores (--stdin-from-command).

    `dump_report` names the JSON file the dump guard writes (bytes, seconds, stderr tail) when
    the plan is a guarded dump; `after_success` runs once restic has made the snapshot; `label`
    says what the plan covers (a database or file name) for messages and run details.
    """

    paths: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)
    one_file_system: bool = False
    stdin_command: list[str] | None = None
    stdin_filename: str | None = None
    command_env: dict[str, str] = field(default_factory=dict)
    extra_tags: list[str] = field(default_factory=list)
    cwd: str | None = None
    cleanup: list[Callable[[], None]] = field(default_factory=list)
    label: str = ""
    dump_report: str | None = None
    after_success: list[Callable[[str | None], None]] = field(default_factory=list)

    def run_cleanup(self) -> None:
        for action in reversed(self.cleanup):
            action()


class KeyValues(Protocol):
    """Small persistent values (the state database's kv table)."""

    def get_value(self, key: str) -> str | None: ...

    def set_value(self, key: str, value: str) -> None: ...


@dataclass(frozen=True)
class PlanContext:
    """What some source kinds need beyond their config: whose source it is, and memory."""

    agency: str
    values: KeyValues | None = None
    scratch_dir: Path | None = None  # room for temporary copies (e.g. of a SQLite database)


class DumpError(DumpFailedError):
    """A database dump (or its restore) failed; `stderr_tail` holds the tool's last words."""

    def __init__(self, message: str, hint: str = "", *, stderr_tail: str = ""):
        super().__init__(message, hint)
        self.stderr_tail = stderr_tail


@dataclass(frozen=True)
class DumpReport:
    """What the dump guard observed about one dump."""

    ok: bool
    bytes: int
    seconds: float
    reason: str = ""
    returncode: int | None = None
    stderr_tail: str = ""
    reader_gone: bool = False  # restic stopped reading: restic's failure, not the dump's

    def to_json(self) -> str:
        return json.dumps({"ok": self.ok, "bytes": self.bytes, "seconds": self.seconds,
                           "reason": self.reason, "returncode": self.returncode,
                           "stderr_tail": self.stderr_tail, "reader_gone": self.reader_gone})

    @classmethod
    def read(cls, path: str | Path) -> DumpReport | None:
        """The report, or None when the guard never wrote one (it did not start)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        code = data.get("returncode")
        return cls(ok=bool(data.get("ok")), bytes=int(data.get("bytes") or 0),
                   seconds=float(data.get("seconds") or 0.0), reason=str(data.get("reason", "")),
                   returncode=int(code) if isinstance(code, int) else None,
                   stderr_tail=str(data.get("stderr_tail", "")),
                   reader_gone=bool(data.get("reader_gone")))
