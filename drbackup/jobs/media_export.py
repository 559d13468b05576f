"""drbackup media export: bring an agency's snapshots onto a mounted medium, read them back,
and only then call the medium verified (#19 §1).

The medium's repository is a file-for-file mirror of the agency's repository
(jobs/media_mirror.py): the same repository id and key files, so the agency's password opens
it; nothing is decrypted or encrypted again, and an export onto a medium with an older copy
writes only the files it does not have yet.

Order of writes, so a medium pulled at any moment (or a full disk, or kill -9) is either at its
previous verified state or clearly marked incomplete:
  1. `drbackup-media.incomplete` (fsync'd): from here on, verify says "incomplete";
  2. the mirror, under this host's repository-files lock (its forget and prune wait): packs,
     then index, then snapshots, keys, config last, each file temp + fsync + rename, hashed
     while written; then what the source no longer has is deleted from the medium;
  3. evidence reports, each written temp + rename + fsync;
  4. read-back: every file hashed from the medium (page cache dropped) against what was
     written (restic's files: their names), beside restic's snapshots and check of the
     medium (--read-data or the configured subset);
  5. the manifest, temp + rename + fsync, then read back and checked against the key;
  6. the marker removed; the catalogue records the medium as verified.
An interrupted export leaves the marker; the next export copies what is still missing (a
half-written file only ever exists under a temporary name, which it deletes) and completes.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from drbackup.config.models import AgencyConfig
from drbackup.engine import Snapshot
from drbackup.errors import DrBackupError, ExitCode, TargetRefusedError, VerifyFailedError
from drbackup.jobs.evidence import evidence_key
from drbackup.jobs.media_common import media_lock, medium_root, medium_target
from drbackup.jobs.media_mirror import (
    LocalRepository,
    MirrorOutcome,
    RepositoryFiles,
    S3Repository,
    mirror,
)
from drbackup.jobs.recording import RecordedRun, recorded_run
from drbackup.jobs.repo_files_lock import repository_files_lock
from drbackup.jobs.runtime import Runtime
from drbackup.media.errors import MediaIncompleteError, MediaInvalidError
from drbackup.media.layout import (
    INCOMPLETE,
    MANIFEST,
    MAX_FILE_BYTES,
    PUBLIC_KEY,
    reports,
    repository,
)
from drbackup.media.manifest import (
    AgencyEntry,
    FileEntry,
    Manifest,
    SnapshotEntry,
    clear_incomplete,
    mark_incomplete,
    read_manifest,
    write_durably,
    write_manifest,
)
from drbackup.media.readback import inventory
from drbackup.state.media import VERIFIED, WRITING, MediumRecord, next_sequence, record_medium
from drbackup.store import S3Location
from drbackup.verify.evidence import public_pem

log = logging.getLogger(__name__)
REPORTS_DIR = "reports"


@dataclass(frozen=True)
class AgencyExport:
    agency: str
    sequence: int
    snapshots: list[str]
    new_snapshots: list[str]
    initialized: bool


@dataclass(frozen=True)
class ExportOutcome:
    label: str
    medium: str
    agencies: list[AgencyExport]
    files_written: int  # files new or changed since the previous manifest
    bytes_written: int
    files_total: int
    bytes_total: int
    check: str  # what restic check read: "read-data" or the subset
    seconds: float
    notes: list[str] = field(default_factory=list)


def _previous(medium: Path, rt: Runtime) -> Manifest | None:
    """The manifest already on the medium, checked against this host's key; None on a blank
    medium (or one whose first export never finished). A medium written by another host, or
    altered, is refused: exporting onto it would sign what this host did not write."""
    if not (medium / MANIFEST).exists():
        return None
    try:
        return read_manifest(medium, evidence_key(rt).public_key)
    except MediaIncompleteError:
        return None
    except MediaInvalidError as exc:
        raise TargetRefusedError(
            f"the medium {medium} holds a manifest this host cannot vouch for: {exc.message}",
            "use a blank medium, or wipe this one after checking where it comes from") from None


def _carry_reports(rt: Runtime, agency: AgencyConfig, medium: Path) -> list[str]:
    """Copy the agency's signed evidence reports onto the medium (new ones only); the paths
    written, relative to the medium."""
    source = rt.config.daemon.state_dir / REPORTS_DIR / agency.id
    if not source.is_dir():
        return []
    target = reports(medium, agency.id)
    target.mkdir(parents=True, exist_ok=True)
    copied: list[str] = []
    for path in sorted(source.glob("*.json")):
        if path.is_symlink() or not path.is_file():
            continue
        body = path.read_bytes()
        existing = target / path.name
        if existing.is_file() and existing.stat().st_size == len(body):
            continue
        write_durably(existing, body)
        copied.append(existing.relative_to(medium).as_posix())
    return copied


def _source_files(rt: Runtime, agency: AgencyConfig) -> RepositoryFiles:
    """The agency's repository in its primary store, as files: a local store's directory, or
    an S3 store's prefix read through the store's door."""
    store = rt.store_config(agency.store)
    if store.path is not None:
        return LocalRepository(store.path / agency.id)
    s3 = rt.s3_store(agency.store)
    assert s3 is not None and store.url is not None
    return S3Repository(s3, S3Location.parse(store.url).child(agency.id).prefix)


def _mirror_agency(rt: Runtime, agency: AgencyConfig, medium: Path, beside: Executor
                   ) -> tuple[MirrorOutcome, Future[list[Snapshot]]]:
    """Listing and copy under this host's repository-files lock: this host's forget and
    prune wait for it (another host's prune shows as a file gone: SourceChanged). Beside the
    copy (on `beside`), restic lists the source's snapshots: the snapshot files mirrored are
    the same, so the manifest's snapshot details come from there, and the medium is opened
    by restic once (its check), not twice."""
    rt.check_store(agency.store)
    source = _source_files(rt, agency)
    listed = beside.submit(rt.restic.snapshots, rt.target(agency))
    with repository_files_lock(rt.config.daemon.state_dir, agency.id, agency.store,
                               exclusive=False, what="media export",
                               wait=rt.config.daemon.lock_wait.total_seconds()):
        return mirror(source, repository(medium, agency.id)), listed


def _check_media(rt: Runtime, agencies: list[AgencyConfig], medium: Path, label: str) -> str:
    """restic check of the medium's repositories (--read-data, or the configured subset);
    what it read. Without restic's lock: nothing else writes the medium, and a lock file
    coming and going would race the read-back's walk."""
    checked = "read-data"
    for agency in agencies:
        target = medium_target(medium, agency, label, read_only=True)
        subset = agency.offline.read_data_subset if agency.offline else None
        checked = subset or "read-data"
        result = rt.restic.check(target, read_data=subset is None, read_data_subset=subset)
        if not result.ok:
            raise VerifyFailedError(f"restic check of the medium's repository of {agency.id} "
                                    f"failed: {'; '.join(result.errors[:3]) or 'errors found'}",
                                    "the medium is marked incomplete; if a prune ran on the "
                                    "source meanwhile, run the same export again; otherwise "
                                    "use another medium")
    return checked


def _snapshot_entries(rt: Runtime, agency: AgencyConfig, medium: Path, label: str,
                      mirrored: MirrorOutcome, listed: Future[list[Snapshot]]
                      ) -> tuple[list[SnapshotEntry], float | None]:
    """The mirrored snapshots' details from the source's list; from the medium itself when
    that list lacks one (forgotten on another host after the copy)."""
    by_id = {s.id: s for s in listed.result()}
    if set(mirrored.snapshot_ids) <= set(by_id):
        found = [by_id[i] for i in mirrored.snapshot_ids]
    else:
        found = rt.restic.snapshots(medium_target(medium, agency, label, read_only=True))
    found.sort(key=lambda s: s.time)
    entries = [SnapshotEntry(s.original or s.id, s.time.isoformat(), tuple(s.paths),
                             tuple(s.tags), s.hostname) for s in found]
    return entries, (found[-1].time.timestamp() if found else None)


def read_back_problems(medium: Path, files: dict[str, FileEntry],
                        mirrored: dict[str, MirrorOutcome], previous: Manifest | None
                        ) -> list[str]:
    """Every mirrored file read back from the medium against the hash it must have (its
    name; config: as written now, or as the previous manifest says). A file found altered
    is removed, so that the next export writes it again."""
    problems: list[str] = []
    for agency_id, outcome in mirrored.items():
        prefix = f"{repository(medium, agency_id).relative_to(medium).as_posix()}/"
        for relative, sha256 in sorted(outcome.expected.items()):
            found = files.get(prefix + relative)
            if found is None:
                problems.append(f"{prefix}{relative}: missing after the copy")
            elif found.sha256 != sha256:
                problems.append(f"{prefix}{relative}: altered (read back, its SHA-256 is not "
                                "its name: damaged in the agency's repository or on the "
                                "medium; 'drbackup verify --kind check --read-data' tells)")
                (medium / prefix / relative).unlink(missing_ok=True)
        config = prefix + "config"
        held = previous.files.get(config) if previous else None
        if "config" not in outcome.expected and held is not None and files.get(config) != held:
            problems.append(f"{config}: altered (differs from the previous manifest)")
    return problems


def export_media(rt: Runtime, agencies: list[AgencyConfig], medium_path: Path, *,
                 label: str | None = None, location: str | None = None) -> ExportOutcome:
    """Export, read back, sign. Raises TargetRefusedError (medium of another host or label),
    VerifyFailedError (the read-back found the medium bad: it stays marked incomplete),
    a DrBackupError with MEDIA_INCOMPLETE when the medium went away or filled up, restic's
    errors for the source repository."""
    started = time.monotonic()
    medium = medium_root(medium_path)
    rt.restic.require_supported()
    with media_lock(rt.config.daemon.state_dir), ExitStack() as runs:
        previous = _previous(medium, rt)
        name = label or (previous.label if previous else None)
        if name is None:
            raise TargetRefusedError(f"the medium {medium} is blank and has no label",
                                     "pass --label NAME (what is written on the medium)")
        if previous is not None and label is not None and label != previous.label:
            raise TargetRefusedError(f"the medium {medium} is labelled {previous.label!r}, "
                                     f"not {label!r}", f"pass --label {previous.label} or "
                                     "use another medium")
        recorded = [runs.enter_context(recorded_run(rt, "media-export", a.id,
                                                    store=f"media:{name}")) for a in agencies]
        try:
            return _export(rt, agencies, medium, name, previous, location, started, recorded)
        except OSError as exc:
            raise DrBackupError(
                f"the export to {medium} did not finish: {exc.strerror or exc}",
                "the medium is marked incomplete (pulled out, or full?); plug it in again "
                "with room to spare and run the same export", exit_code=ExitCode.MEDIA_INCOMPLETE
            ) from None


def _export(rt: Runtime, agencies: list[AgencyConfig], medium: Path, label: str,
            previous: Manifest | None, location: str | None, started: float,
            recorded: list[RecordedRun]) -> ExportOutcome:
    key = evidence_key(rt)
    destinations = {a.id: (a.offline.destination if a.offline else "internal")
                    for a in agencies}
    mark_incomplete(medium, f"export by {rt.hostname} of {label} started {time.time():.0f}")
    identity = _identity(medium)
    exports: list[AgencyExport] = []
    entries: dict[str, AgencyEntry] = dict(previous.agencies) if previous else {}
    mirrored: dict[str, MirrorOutcome] = {}
    carried: list[str] = []
    sequences: dict[str, int] = {}
    befores: dict[str, set[str]] = {}
    listed: dict[str, Future[list[Snapshot]]] = {}
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="media-restic") as beside:
        for agency in agencies:
            repo = repository(medium, agency.id)
            if previous is not None and agency.id in previous.agencies:
                # What the medium's last verified state holds (signed by this host, checked).
                before = {s.id for s in previous.agencies[agency.id].snapshots}
            else:
                before = {e.name for e in os.scandir(repo / "snapshots")} \
                    if (repo / "snapshots").is_dir() else set()
            befores[agency.id] = before
            mirrored[agency.id], listed[agency.id] = _mirror_agency(rt, agency, medium, beside)
            outcome = mirrored[agency.id]
            carried += _carry_reports(rt, agency, medium)
            sequences[agency.id] = sequence = next_sequence(rt.state, agency.id,
                                                            destinations[agency.id])
            record_medium(rt.state, MediumRecord(
                label, agency.id, destinations[agency.id], sequence, WRITING, time.time(),
                None, location, outcome.snapshot_ids, 0, 0, None))
        _still_there(medium, identity)
        # Read-back: every file of the exported agencies from the medium itself, while
        # restic checks the medium's repositories beside it (one waits on the medium, the
        # other on the CPU).
        checking = beside.submit(_check_media, rt, agencies, medium, label)
        files, odd = inventory(medium, agencies={a.id for a in agencies}, cold=True)
        problems = [p.line() for p in odd] + read_back_problems(medium, files, mirrored,
                                                                 previous)
        if problems:
            raise VerifyFailedError(f"the medium holds {problems[0]}",
                                    "the medium is marked incomplete; run the same export "
                                    "again, and use another medium if it happens again")
        checked = checking.result()
        newest: dict[str, float | None] = {}
        for agency in agencies:
            snaps, newest[agency.id] = _snapshot_entries(rt, agency, medium, label,
                                                         mirrored[agency.id], listed[agency.id])
            entries[agency.id] = AgencyEntry(sequences[agency.id], tuple(snaps))
            ids = [s.id for s in snaps]
            exports.append(AgencyExport(agency.id, sequences[agency.id], ids,
                                        [i for i in ids if i not in befores[agency.id]],
                                        not mirrored[agency.id].had_config))
    too_big = [p for p, f in files.items() if f.size > MAX_FILE_BYTES]
    if too_big:
        raise VerifyFailedError(f"{too_big[0]} is over 4 GiB, more than vfat/exFAT media hold",
                                "lower restic's pack size of the source repository")
    old_files = previous.files if previous else {}
    exported = {a.id for a in agencies}
    kept = {p: f for p, f in old_files.items() if p.split("/")[1] not in exported}
    all_files: dict[str, FileEntry] = {**kept, **files}
    written_now = {f"{repository(medium, a).relative_to(medium).as_posix()}/{r}"
                   for a, outcome in mirrored.items() for r in outcome.written} | set(carried)
    written = {p: f for p, f in files.items() if p in written_now}
    manifest = Manifest(label, rt.hostname, _one_destination(destinations), time.time(),
                        entries, all_files)
    _still_there(medium, identity)  # the read-back read the medium, not what replaced it
    write_durably(medium / PUBLIC_KEY, public_pem(key.public_key))
    write_manifest(medium, manifest, key)
    again = read_manifest(medium, key.public_key)  # the manifest itself, read back
    if again.files != all_files:
        raise VerifyFailedError("the manifest read back from the medium differs from the one "
                                "written", "the medium is faulty; use another one")
    _still_there(medium, identity)
    clear_incomplete(medium)
    _still_there(medium, identity, marker=False)
    verified_at = time.time()
    for export in exports:
        record_medium(rt.state, MediumRecord(
            label, export.agency, destinations[export.agency], export.sequence, VERIFIED,
            manifest.exported_at, verified_at, location, export.snapshots, len(all_files),
            manifest.total_bytes, newest[export.agency]))
    for run in recorded:
        run.finish("success", details={
            "label": label, "files_written": len(written),
            "bytes_written": sum(f.size for f in written.values())})
    return ExportOutcome(label, str(medium), exports, len(written),
                         sum(f.size for f in written.values()), len(all_files),
                         manifest.total_bytes, checked, time.monotonic() - started,
                         _on_host_disk(rt, medium))


def _on_host_disk(rt: Runtime, medium: Path) -> list[str]:
    """A note when the "medium" is a plain directory on the state directory's file system:
    the mount point of a medium that was not mounted (or was pulled before the export) is
    such a directory, and the copy then sits on this host's disk."""
    state_dir = rt.config.daemon.state_dir
    if os.path.ismount(medium) or os.stat(medium).st_dev != os.stat(state_dir).st_dev:
        return []
    return [f"{medium} is not a mount point and is on the file system of this host's state "
            "directory: the copy is on this host's disk, not on a removable medium (was the "
            "medium mounted?)"]


def _identity(medium: Path) -> tuple[int, int, int]:
    """(device of the medium, device and inode of the marker just written on it)."""
    marker = os.stat(medium / INCOMPLETE, follow_symlinks=False)
    return os.stat(medium).st_dev, marker.st_dev, marker.st_ino


def _still_there(medium: Path, identity: tuple[int, int, int], *, marker: bool = True) -> None:
    """Raises MEDIA_INCOMPLETE when the medium's path no longer leads to the medium the export
    began on. A medium pulled (or lazily unmounted) mid-export leaves its mount point as an
    empty directory of the host's disk: restic and the read-back would go on there, and a
    complete, verified copy would be written to the host instead of the medium."""
    try:
        device = os.stat(medium).st_dev
        found = os.stat(medium / INCOMPLETE, follow_symlinks=False) if marker else None
    except FileNotFoundError:
        device, found = -1, None
    if device != identity[0] or (marker and (
            found is None or (found.st_dev, found.st_ino) != identity[1:])):
        raise DrBackupError(
            f"the medium at {medium} went away during the export (pulled out or unmounted)",
            "plug it in again and run the same export: the medium is marked incomplete and "
            "the next export completes it", exit_code=ExitCode.MEDIA_INCOMPLETE)


def _one_destination(destinations: dict[str, str]) -> str:
    values = set(destinations.values())
    if len(values) > 1:
        raise TargetRefusedError("the agencies of this export go to different destinations "
                                 f"({', '.join(sorted(values))})",
                                 "export them to separate media")
    return values.pop()
