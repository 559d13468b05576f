"""The medium's manifest: what it holds (agencies, their snapshots, every file with size and
SHA-256, a sequence number per agency per destination), signed with the exporting host's
evidence key (Ed25519, the envelope of drbackup/verify/evidence.py). Parsing treats the file as
hostile: every field is checked for type and shape before anything uses it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from drbackup.config.models.base import is_identifier
from drbackup.errors import DrBackupError, VerifyFailedError
from drbackup.media.errors import MediaIncompleteError, MediaInvalidError
from drbackup.media.layout import INCOMPLETE, MANIFEST, MANIFEST_TMP, valid_listed_path
from drbackup.verify.evidence import EvidenceKey, key_id, verify_envelope

FORMAT = "drbackup-media/1"
_HEX64 = frozenset("0123456789abcdef")
MAX_MANIFEST_BYTES = 256 * 1024**2


def _hex64(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX64


@dataclass(frozen=True)
class FileEntry:
    size: int
    sha256: str


@dataclass(frozen=True)
class SnapshotEntry:
    id: str
    time: str
    paths: tuple[str, ...]
    tags: tuple[str, ...]
    hostname: str


@dataclass(frozen=True)
class AgencyEntry:
    sequence: int
    snapshots: tuple[SnapshotEntry, ...]


@dataclass(frozen=True)
class Manifest:
    label: str
    host: str
    destination: str
    exported_at: float
    agencies: dict[str, AgencyEntry]
    files: dict[str, FileEntry]
    key_id: str = ""  # of the key that signed it (set when read)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "label": self.label, "host": self.host,
            "destination": self.destination, "exported_at": self.exported_at,
            "agencies": {a: {"sequence": e.sequence, "snapshots": [
                {"id": s.id, "time": s.time, "paths": list(s.paths), "tags": list(s.tags),
                 "hostname": s.hostname} for s in e.snapshots]}
                for a, e in sorted(self.agencies.items())},
            "files": {p: {"size": f.size, "sha256": f.sha256}
                      for p, f in sorted(self.files.items())},
        }

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files.values())


def _bad(what: str) -> MediaInvalidError:
    return MediaInvalidError(f"the medium's manifest is malformed: {what}",
                             "do not import this medium; export it again on the source host")


def _strings(value: object, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and len(v) < 4096
                                              for v in value):
        raise _bad(what)
    return tuple(value)


def parse(payload: object) -> Manifest:
    """A manifest from its (already signature-checked) JSON. Raises MediaInvalidError."""
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise _bad(f"not a {FORMAT} manifest")
    label, host, dest = payload.get("label"), payload.get("host"), payload.get("destination")
    if not is_identifier(label) or not is_identifier(dest) or not isinstance(host, str) \
            or not host or len(host) > 253:
        raise _bad("label, host or destination")
    exported = payload.get("exported_at")
    if not isinstance(exported, (int, float)) or isinstance(exported, bool):
        raise _bad("exported_at")
    raw_agencies, raw_files = payload.get("agencies"), payload.get("files")
    if not isinstance(raw_agencies, dict) or not raw_agencies or not isinstance(raw_files, dict):
        raise _bad("agencies or files")
    agencies: dict[str, AgencyEntry] = {}
    for agency, entry in raw_agencies.items():
        if not is_identifier(agency) or not isinstance(entry, dict):
            raise _bad(f"agency {str(agency)[:64]!r}")
        sequence, snaps = entry.get("sequence"), entry.get("snapshots")
        if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 1 \
                or not isinstance(snaps, list):
            raise _bad(f"sequence or snapshots of agency {agency}")
        parsed: list[SnapshotEntry] = []
        for snap in snaps:
            if not isinstance(snap, dict) or not _hex64(snap.get("id")) \
                    or not isinstance(snap.get("time"), str) \
                    or not isinstance(snap.get("hostname"), str):
                raise _bad(f"a snapshot of agency {agency}")
            parsed.append(SnapshotEntry(snap["id"], snap["time"],
                                        _strings(snap.get("paths"), "snapshot paths"),
                                        _strings(snap.get("tags"), "snapshot tags"),
                                        snap["hostname"]))
        agencies[agency] = AgencyEntry(sequence, tuple(parsed))
    files: dict[str, FileEntry] = {}
    for path, entry in raw_files.items():
        if not isinstance(path, str) or not valid_listed_path(path) \
                or path.split("/")[1] not in agencies or not isinstance(entry, dict):
            raise _bad(f"file name {str(path)[:120]!r}")
        size, digest = entry.get("size"), entry.get("sha256")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 \
                or not _hex64(digest):
            raise _bad(f"size or hash of {path}")
        files[path] = FileEntry(size, str(digest))
    return Manifest(str(label), host, str(dest), float(exported), agencies, files)


def signed_bytes(manifest: Manifest, key: EvidenceKey) -> bytes:
    envelope = key.sign(manifest.to_json())
    return (json.dumps(envelope, sort_keys=True, ensure_ascii=True) + "\n").encode()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # vfat/exFAT on some kernels refuse fsync on a directory: the file's fsync holds
    finally:
        os.close(fd)


def write_durably(path: Path, body: bytes) -> None:
    """Write a file so that a pulled medium holds the old one or the new one, whole: to a
    temporary name, fsync, rename over, fsync the directory."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        view = memoryview(body)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def mark_incomplete(medium: Path, note: str) -> None:
    write_durably(medium / INCOMPLETE, (note + "\n").encode())


def clear_incomplete(medium: Path) -> None:
    try:
        os.unlink(medium / INCOMPLETE)
    except FileNotFoundError:
        return
    _fsync_dir(medium)


def write_manifest(medium: Path, manifest: Manifest, key: EvidenceKey) -> None:
    write_durably(medium / MANIFEST, signed_bytes(manifest, key))


def _read_nofollow(path: Path, limit: int) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        chunks, total = [], 0
        while chunk := os.read(fd, 1 << 20):
            total += len(chunk)
            if total > limit:
                raise _bad("larger than any genuine manifest")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_manifest(medium: Path, trusted: Ed25519PublicKey | None) -> Manifest:
    """The medium's manifest, its signature checked against `trusted` (None: only the shape
    and the embedded key are checked; the caller must not trust the result).

    Raises MediaIncompleteError when the medium holds no manifest (an export that never
    finished on a blank medium), MediaInvalidError when it is unreadable, truncated, unsigned,
    signed by another key or altered."""
    path = medium / MANIFEST
    try:
        body = _read_nofollow(path, MAX_MANIFEST_BYTES)
    except FileNotFoundError:
        if (medium / MANIFEST_TMP).exists() or (medium / INCOMPLETE).exists():
            raise MediaIncompleteError(
                f"{medium} holds no manifest: an export to it did not finish",
                "plug it into the exporting host and run 'drbackup media export' again"
            ) from None
        raise MediaInvalidError(f"{medium} is not a drbackup medium: no {MANIFEST}",
                                "check the mount point; export to it first") from None
    except OSError as exc:
        raise MediaInvalidError(f"cannot read {path}: {exc.strerror}",
                                "a manifest must be a plain file (not a link); check the "
                                "medium") from None
    try:
        envelope = json.loads(body)
    except ValueError:
        raise MediaInvalidError(f"the manifest {path} is truncated or not JSON",
                                "do not import this medium; export it again") from None
    signature = envelope.get("signature") if isinstance(envelope, dict) else None
    if not isinstance(signature, dict) or not isinstance(envelope.get("report"), dict):
        raise MediaInvalidError(f"the manifest {path} is not signed",
                                "do not import this medium; export it again on the source host")
    if trusted is None:
        manifest = parse(envelope["report"])
        return _with_key(manifest, str(signature.get("key_id", "")))
    try:
        verified = verify_envelope(envelope, trusted, name=f"the manifest {path}")
    except VerifyFailedError as exc:
        raise MediaInvalidError(exc.message, "do not import this medium: it was not written "
                                "by the trusted host, or was altered after") from None
    except DrBackupError as exc:  # pragma: no cover - verify_envelope raises only the above
        raise MediaInvalidError(exc.message, exc.hint) from None
    return _with_key(parse(verified.report), verified.key_id)


def _with_key(manifest: Manifest, signer: str) -> Manifest:
    return Manifest(manifest.label, manifest.host, manifest.destination, manifest.exported_at,
                    manifest.agencies, manifest.files, key_id=signer)


def trusted_key_id(public_key: Ed25519PublicKey) -> str:
    return key_id(public_key)
