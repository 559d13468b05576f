"""Typed values that cross the engine's boundary: what restic reported, parsed."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from drbackup.engine.jsonlines import JsonObject, as_float, as_int

_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_restic_time(text: str) -> datetime:
    """restic writes nanosecond ISO-8601 timestamps; Python reads microseconds. Always aware."""
    cleaned = _FRACTION.sub(r"\1", text.strip()).replace("Z", "+00:00")
    value = datetime.fromisoformat(cleaned)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


@dataclass(frozen=True)
class ResticVersion:
    version: tuple[int, int, int]
    text: str

    def __str__(self) -> str:
        return ".".join(str(p) for p in self.version)


@dataclass(frozen=True)
class RepoTarget:
    """Where a repository is and how to open it. Secrets stay out of argv: the password goes in
    RESTIC_PASSWORD_FILE, backend credentials in the child's environment only."""

    url: str
    password_file: Path
    backend_env: tuple[tuple[str, str], ...] = ()
    label: str = ""  # e.g. "planning@offsite", for messages
    limit_upload_kib: int | None = None  # restic --limit-upload (KiB/s), from the store config

    @property
    def display(self) -> str:
        return self.label or self.url

    def secrets(self) -> list[str]:
        """Values that must never be shown: backend secrets (keys, tokens)."""
        return [value for key, value in self.backend_env
                if "SECRET" in key or "TOKEN" in key or "PASSWORD" in key]


@dataclass(frozen=True)
class Progress:
    """One restic `status` message of backup or restore."""

    percent_done: float = 0.0
    seconds_elapsed: float = 0.0
    seconds_remaining: float = 0.0
    total_files: int = 0
    files_done: int = 0
    total_bytes: int = 0
    bytes_done: int = 0
    error_count: int = 0

    @classmethod
    def from_json(cls, message: JsonObject) -> Progress:
        return cls(
            percent_done=as_float(message.get("percent_done")),
            seconds_elapsed=as_float(message.get("seconds_elapsed")),
            seconds_remaining=as_float(message.get("seconds_remaining")),
            total_files=as_int(message.get("total_files")),
            files_done=as_int(message.get("files_done", message.get("files_restored"))),
            total_bytes=as_int(message.get("total_bytes")),
            bytes_done=as_int(message.get("bytes_done", message.get("bytes_restored"))),
            error_count=as_int(message.get("error_count")),
        )


@dataclass(frozen=True)
class BackupSummary:
    snapshot_id: str | None
    files_new: int = 0
    files_changed: int = 0
    files_unmodified: int = 0
    dirs_new: int = 0
    dirs_changed: int = 0
    dirs_unmodified: int = 0
    data_added: int = 0
    data_added_packed: int = 0
    total_files_processed: int = 0
    total_bytes_processed: int = 0
    total_duration: float = 0.0

    @classmethod
    def from_json(cls, message: JsonObject) -> BackupSummary:
        snapshot = message.get("snapshot_id")
        return cls(
            snapshot_id=str(snapshot) if snapshot else None,
            files_new=as_int(message.get("files_new")),
            files_changed=as_int(message.get("files_changed")),
            files_unmodified=as_int(message.get("files_unmodified")),
            dirs_new=as_int(message.get("dirs_new")),
            dirs_changed=as_int(message.get("dirs_changed")),
            dirs_unmodified=as_int(message.get("dirs_unmodified")),
            data_added=as_int(message.get("data_added")),
            data_added_packed=as_int(message.get("data_added_packed")),
            total_files_processed=as_int(message.get("total_files_processed")),
            total_bytes_processed=as_int(message.get("total_bytes_processed")),
            total_duration=as_float(message.get("total_duration")),
        )


@dataclass(frozen=True)
class BackupResult:
    """A backup that made a snapshot. `unreadable` lists files restic could not read (exit 3):
    the snapshot is valid but incomplete, a warning rather than a failure."""

    summary: BackupSummary
    unreadable: list[str] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        return bool(self.unreadable)


@dataclass(frozen=True)
class SnapshotSummary:
    backup_start: datetime | None
    backup_end: datetime | None
    data_added: int
    total_files_processed: int
    total_bytes_processed: int


@dataclass(frozen=True)
class Snapshot:
    id: str
    time: datetime
    hostname: str
    paths: list[str]
    tags: list[str]
    tree: str = ""
    parent: str | None = None
    original: str | None = None
    program_version: str = ""
    summary: SnapshotSummary | None = None

    @property
    def short_id(self) -> str:
        return self.id[:8]

    def tag(self, key: str) -> str | None:
        """The value of a `key=value` tag, e.g. tag("source")."""
        prefix = f"{key}="
        for tag in self.tags:
            if tag.startswith(prefix):
                return tag[len(prefix):]
        return None

    @classmethod
    def from_json(cls, message: JsonObject) -> Snapshot:
        raw_summary = message.get("summary")
        summary = None
        if isinstance(raw_summary, dict):
            start = raw_summary.get("backup_start")
            end = raw_summary.get("backup_end")
            summary = SnapshotSummary(
                backup_start=parse_restic_time(start) if isinstance(start, str) else None,
                backup_end=parse_restic_time(end) if isinstance(end, str) else None,
                data_added=as_int(raw_summary.get("data_added")),
                total_files_processed=as_int(raw_summary.get("total_files_processed")),
                total_bytes_processed=as_int(raw_summary.get("total_bytes_processed")),
            )
        parent = message.get("parent")
        original = message.get("original")
        return cls(
            id=str(message.get("id", "")),
            time=parse_restic_time(str(message.get("time"))),
            hostname=str(message.get("hostname", "")),
            paths=[str(p) for p in message.get("paths") or []],
            tags=[str(t) for t in message.get("tags") or []],
            tree=str(message.get("tree", "")),
            parent=str(parent) if parent else None,
            original=str(original) if original else None,
            program_version=str(message.get("program_version", "")),
            summary=summary,
        )


@dataclass(frozen=True)
class RestoreSummary:
    seconds_elapsed: float
    total_files: int
    files_restored: int
    files_skipped: int
    total_bytes: int
    bytes_restored: int
    bytes_skipped: int
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, message: JsonObject, errors: list[str]) -> RestoreSummary:
        return cls(
            seconds_elapsed=as_float(message.get("seconds_elapsed")),
            total_files=as_int(message.get("total_files")),
            files_restored=as_int(message.get("files_restored")),
            files_skipped=as_int(message.get("files_skipped")),
            total_bytes=as_int(message.get("total_bytes")),
            bytes_restored=as_int(message.get("bytes_restored")),
            bytes_skipped=as_int(message.get("bytes_skipped")),
            errors=errors,
        )


@dataclass(frozen=True)
class LsNode:
    path: str
    type: str
    size: int
    mode: int
    mtime: datetime | None

    @classmethod
    def from_json(cls, message: JsonObject) -> LsNode:
        mtime = message.get("mtime")
        return cls(
            path=str(message.get("path", "")),
            type=str(message.get("type", "")),
            size=as_int(message.get("size")),
            mode=as_int(message.get("mode")),
            mtime=parse_restic_time(mtime) if isinstance(mtime, str) else None,
        )


@dataclass(frozen=True)
class FindHit:
    """One match of `restic find`: a path in one snapshot."""

    snapshot_id: str
    path: str
    type: str
    size: int
    mtime: datetime | None

    @classmethod
    def from_json(cls, snapshot_id: str, message: JsonObject) -> FindHit:
        mtime = message.get("mtime")
        return cls(
            snapshot_id=snapshot_id,
            path=str(message.get("path", "")),
            type=str(message.get("type", "")),
            size=as_int(message.get("size")),
            mtime=parse_restic_time(mtime) if isinstance(mtime, str) else None,
        )


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    errors: list[str]
    num_errors: int = 0
    broken_packs: list[str] = field(default_factory=list)
    suggest_repair_index: bool = False
    suggest_prune: bool = False


@dataclass(frozen=True)
class ForgetPolicy:
    """restic forget's --keep-* options; None means not set."""

    keep_within: timedelta | None = None
    keep_last: int | None = None
    keep_hourly: int | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    keep_monthly: int | None = None
    keep_yearly: int | None = None


@dataclass(frozen=True)
class ForgetGroup:
    tags: list[str]
    host: str
    paths: list[str]
    keep: list[Snapshot]
    remove: list[Snapshot]
    reasons: dict[str, list[str]]  # snapshot id -> matched rules ("daily snapshot", ...)


@dataclass(frozen=True)
class RepoStats:
    total_size: int
    total_file_count: int
    snapshots_count: int
    total_uncompressed_size: int = 0
