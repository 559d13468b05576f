"""Typed values that cross the engine's boundary: what restic reported, parsed."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from drbackup.engine.errors import ResticError
from drbackup.engine.jsonlines import JsonObject, as_float, as_int, as_str_list

_FRACTION = re.compile(r"(\.\d{6})\d+")
_SNAPSHOT_ID = re.compile(r"[0-9a-f]{4,64}")  # restic: 64 hex digits


def parse_restic_time(text: str) -> datetime:
    """restic writes nanosecond ISO-8601 timestamps; Python reads microseconds. Always aware.

    Raises ValueError when the text is not such a timestamp."""
    cleaned = _FRACTION.sub(r"\1", text.strip()).replace("Z", "+00:00")
    value = datetime.fromisoformat(cleaned)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def _optional_time(value: object) -> datetime | None:
    """A timestamp field that may be missing or malformed without making the record useless."""
    if not isinstance(value, str):
        return None
    try:
        return parse_restic_time(value)
    except ValueError:
        return None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _preview(value: object, limit: int = 80) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[:limit] + "…"


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
    limit_download_kib: int | None = None  # restic --limit-download (KiB/s), from the store config
    ca_file: Path | None = None  # a private CA for the store's TLS (restic --cacert)
    # Read without taking restic's lock (restic --no-lock): a repository on a read-only medium
    # (#19), where writing the lock file fails. Only for repositories that are only read.
    no_lock: bool = False

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
        if snapshot is not None and snapshot != "" and not (
                isinstance(snapshot, str) and _SNAPSHOT_ID.fullmatch(snapshot)):
            # Never record a made-up id as a good snapshot.
            raise ResticError(f"restic's backup summary names no valid snapshot id: "
                              f"{_preview(snapshot)}", "see the log; run 'restic check'")
        return cls(
            snapshot_id=snapshot or None,
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
        """Raises ResticError when the message is not a snapshot (no id, or no readable time):
        a snapshot whose age is unknown must not count towards any objective."""
        if not isinstance(message, dict):
            raise ResticError(f"restic returned a snapshot record that is not an object: "
                              f"{_preview(message)}", "see the log; is the restic binary sane?")
        snapshot_id = message.get("id")
        if not isinstance(snapshot_id, str) or not snapshot_id:
            raise ResticError(f"restic returned a snapshot without an id: {_preview(message)}",
                              "run 'restic check' on the repository")
        raw_time = message.get("time")
        try:
            time = parse_restic_time(raw_time) if isinstance(raw_time, str) else None
        except ValueError:
            time = None
        if time is None:
            raise ResticError(
                f"restic returned snapshot {snapshot_id[:8]} with an unreadable time "
                f"{_preview(raw_time)}", "run 'restic check' on the repository")
        raw_summary = message.get("summary")
        summary = None
        if isinstance(raw_summary, dict):
            summary = SnapshotSummary(
                backup_start=_optional_time(raw_summary.get("backup_start")),
                backup_end=_optional_time(raw_summary.get("backup_end")),
                data_added=as_int(raw_summary.get("data_added")),
                total_files_processed=as_int(raw_summary.get("total_files_processed")),
                total_bytes_processed=as_int(raw_summary.get("total_bytes_processed")),
            )
        parent = message.get("parent")
        original = message.get("original")
        return cls(
            id=snapshot_id,
            time=time,
            hostname=str(message.get("hostname", "")),
            paths=as_str_list(message.get("paths")),
            tags=as_str_list(message.get("tags")),
            tree=str(message.get("tree", "")),
            parent=str(parent) if parent else None,
            original=str(original) if original else None,
            program_version=str(message.get("program_version", "")),
            summary=summary,
        )

    def to_json(self) -> JsonObject:
        """The snapshot as restic writes it in `snapshots --json` (the fields drbackup reads), so
        from_json(to_json()) gives the same snapshot back."""
        message: JsonObject = {"id": self.id, "time": self.time.isoformat(),
                               "hostname": self.hostname, "paths": list(self.paths),
                               "tags": list(self.tags), "tree": self.tree,
                               "program_version": self.program_version}
        if self.parent:
            message["parent"] = self.parent
        if self.original:
            message["original"] = self.original
        if self.summary is not None:
            message["summary"] = {
                "backup_start": _iso(self.summary.backup_start),
                "backup_end": _iso(self.summary.backup_end),
                "data_added": self.summary.data_added,
                "total_files_processed": self.summary.total_files_processed,
                "total_bytes_processed": self.summary.total_bytes_processed,
            }
        return message


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
        return cls(
            path=str(message.get("path", "")),
            type=str(message.get("type", "")),
            size=as_int(message.get("size")),
            mode=as_int(message.get("mode")),
            mtime=_optional_time(message.get("mtime")),
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
