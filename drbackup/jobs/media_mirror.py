"""The medium's repository as a file-for-file mirror of the agency's repository (#19 §1).

The medium holds the same restic repository as the store: the same config (so the same
repository id), the same key files (the agency's password opens it), the same index, snapshot
and pack files, copied as they are. restic's files are named by the SHA-256 of their content
and never change once written (only `config` has a fixed name), so a mirror is incremental by
name: copy what the medium does not have yet, then delete from the medium what the source no
longer has. Nothing is decrypted or encrypted again: `restic copy` into a repository with its
own key re-encrypted every blob and ran at a twentieth of the speed of `cp` (BENCHMARKS.md).

Order, so that a medium cut off at any moment never looks more complete than it is:
- listed in the reverse of the order restic writes them (snapshots, index, keys and config,
  then packs): whatever a listed snapshot or index needs was written before it, so it is in
  the listing even while a backup runs;
- copied in restic's own order: packs, then index, then snapshots, then keys, config last;
  each file to a temporary name, fsync'd, renamed, its directory fsync'd before the next kind;
- what the source no longer has is deleted from the medium only after all of that.

A restic file's name is the SHA-256 of its bytes, so the mirror does not hash what it writes:
the read-back (media/readback.py) hashes every file from the medium once, and a file whose
hash is not its name was damaged in the source or on the way (bench: hashing while writing
as well doubled the CPU an export needs and made the copy 2.5x slower than `cp`). Only
`config` is hashed as it is written. A file listed and gone before it was read (a prune on
another host; this host's forget and prune wait, jobs/repo_files_lock.py) stops the export:
the medium stays marked incomplete and the next export completes it.

Sources: a local store's directory (read without following links) or an S3 store through
its boto3 door (listed per kind, each object streamed, several at once).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from drbackup.errors import DrBackupError, ExitCode
from drbackup.media.manifest import FileEntry
from drbackup.store.errors import ObjectMissing

if TYPE_CHECKING:
    from drbackup.store import S3Store

log = logging.getLogger(__name__)

CONFIG = "config"
LIST_ORDER = ("snapshots", "index", "keys", CONFIG, "data")
COPY_ORDER = ("data", "index", "snapshots", "keys", CONFIG)
DIRECTORIES = ("data", "index", "keys", "locks", "snapshots")
TMP_SUFFIX = ".tmp"
CHUNK = 1024 * 1024
_NAME = re.compile(r"(data/([0-9a-f]{2})/([0-9a-f]{64})|(index|snapshots|keys)/([0-9a-f]{64})"
                   r"|config)")
_BUFFERS = threading.local()


class SourceChanged(DrBackupError):
    """A file of the source was gone, or not what it was listed as, when it was read."""

    exit_code = ExitCode.MEDIA_INCOMPLETE


def restic_name(relative: str) -> bool:
    """A file of restic's repository layout (data/xx/<id>, index|snapshots|keys/<id>,
    config); restic's temporary files and anything else are not."""
    match = _NAME.fullmatch(relative)
    if match is None:
        return False
    return match.group(2) is None or match.group(3).startswith(match.group(2))


def kind_of(relative: str) -> str:
    return relative.split("/", 1)[0]


def expected_hash(relative: str) -> str | None:
    """The SHA-256 a restic file must have: its name (None for config)."""
    return None if relative == CONFIG else relative.rsplit("/", 1)[1]


class RepositoryFiles(Protocol):
    def listing(self, kind: str) -> dict[str, int]:
        """relative name -> size of the repository's files of one kind."""

    def read(self, relative: str, sink: Callable[[bytes | memoryview], None]) -> int:
        """Hand the file's bytes to sink; return how many. Raises SourceChanged (gone)."""


def _buffer() -> bytearray:
    buffer = getattr(_BUFFERS, "buffer", None)
    if buffer is None:
        buffer = _BUFFERS.buffer = bytearray(CHUNK)
    return buffer


class LocalRepository:
    """A local store's repository directory, read without following links."""

    workers = 2  # one file's read and hash overlap another's write; more only adds seeks

    def __init__(self, root: Path):
        self.root = root

    def listing(self, kind: str) -> dict[str, int]:
        found: dict[str, int] = {}
        if kind == CONFIG:
            try:
                info = os.stat(self.root / CONFIG, follow_symlinks=False)
            except FileNotFoundError:
                return found
            if stat.S_ISREG(info.st_mode):
                found[CONFIG] = info.st_size
            return found
        directories = [self.root / kind]
        if kind == "data":
            directories = [Path(e.path) for e in _entries(self.root / "data")
                           if e.is_dir(follow_symlinks=False)]
        for directory in directories:
            for entry in _entries(directory):
                relative = f"{directory.relative_to(self.root).as_posix()}/{entry.name}"
                if entry.is_file(follow_symlinks=False) and restic_name(relative):
                    found[relative] = entry.stat(follow_symlinks=False).st_size
        return found

    def _open(self, relative: str) -> int:
        try:
            fd = os.open(self.root / relative, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise _gone(relative) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise _gone(relative)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        return fd

    def send(self, relative: str, out: int) -> int:
        """Copy the file into the open file `out` inside the kernel (sendfile: no bytes pass
        through this process; as fast as `cp` where reading, hashing and writing in Python
        were not)."""
        fd = self._open(relative)
        try:
            total = 0
            while sent := os.sendfile(out, fd, None, 1 << 30):
                total += sent
            return total
        finally:
            os.close(fd)

    def read(self, relative: str, sink: Callable[[bytes | memoryview], None]) -> int:
        fd = self._open(relative)
        try:
            buffer = _buffer()
            view = memoryview(buffer)
            total = 0
            while count := os.readv(fd, [buffer]):
                sink(view[:count])
                total += count
            return total
        finally:
            os.close(fd)


class S3Repository:
    """An S3 store's repository (a prefix of its bucket), through the store's door."""

    workers = 4  # several objects in flight hide each request's latency

    def __init__(self, store: S3Store, prefix: str):
        self.store = store
        self.prefix = prefix.strip("/")

    def _key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def listing(self, kind: str) -> dict[str, int]:
        wanted = self._key(CONFIG) if kind == CONFIG else self._key(kind) + "/"
        found: dict[str, int] = {}
        for key, size in self.store.list_sizes(wanted).items():
            relative = key[len(self._key("")):].lstrip("/") if self.prefix else key
            if (kind == CONFIG and key != wanted) or not restic_name(relative):
                continue
            found[relative] = size
        return found

    def read(self, relative: str, sink: Callable[[bytes | memoryview], None]) -> int:
        try:
            return self.store.stream(self._key(relative), sink, chunk=CHUNK)
        except ObjectMissing:
            raise _gone(relative) from None


def _entries(directory: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as entries:
            return list(entries)
    except FileNotFoundError:
        return []


def _gone(relative: str) -> SourceChanged:
    return SourceChanged(
        f"the agency's repository changed during the export: {relative} is gone (a prune "
        "or forget on another host?)", "run the same export again: the medium is marked "
        "incomplete and the next export completes it")


def _grown(relative: str, size: int, count: int | None = None) -> SourceChanged:
    read = f"{count} when read" if count is not None else "more when read"
    return SourceChanged(f"the agency's repository changed during the export: {relative} "
                         f"was {size} bytes when listed, {read}", "run the same export "
                         "again: the medium is marked incomplete and the next export "
                         "completes it")


@dataclass(frozen=True)
class MirrorOutcome:
    written: dict[str, FileEntry]  # relative to the repository: what was copied now
    deleted: int
    expected: dict[str, str]  # every file of the mirror -> the SHA-256 it must have
    snapshot_ids: list[str]
    had_config: bool  # the medium held a repository before (False: a blank medium)


def list_source(source: RepositoryFiles) -> dict[str, int]:
    """Every file of the source repository, listed kind by kind in LIST_ORDER."""
    files: dict[str, int] = {}
    for kind in LIST_ORDER:
        files.update(source.listing(kind))
    if CONFIG not in files:
        raise DrBackupError("the agency's repository has no config file: not a restic "
                            "repository", "run 'drbackup repo init', or check the store")
    return files


def on_medium(repository: Path) -> dict[str, int]:
    """relative name -> size of every plain file under the medium's repository, restic's
    locks left out (links and other odd entries are listed too, with size -1: replaced)."""
    found: dict[str, int] = {}
    if not repository.is_dir():
        return found
    stack = [repository]
    while stack:
        directory = stack.pop()
        for entry in _entries(directory):
            info = entry.stat(follow_symlinks=False)
            relative = Path(entry.path).relative_to(repository).as_posix()
            if stat.S_ISDIR(info.st_mode):
                if relative != "locks":
                    stack.append(Path(entry.path))
            else:
                found[relative] = info.st_size if stat.S_ISREG(info.st_mode) else -1
    return found


def _copy_file(source: RepositoryFiles, relative: str, size: int, repository: Path
               ) -> FileEntry:
    target = repository / relative
    tmp = target.with_name(target.name + TMP_SUFFIX)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    want = expected_hash(relative)
    digest = hashlib.sha256() if want is None else None

    written = 0

    def sink(piece: bytes | memoryview) -> None:
        nonlocal written
        written += len(piece)
        if written > size:  # a store serving more than it listed does not fill the medium
            raise _grown(relative, size)
        if digest is not None:
            digest.update(piece)
        view = memoryview(piece)
        while view:
            view = view[os.write(fd, view):]

    try:
        send = getattr(source, "send", None)
        count = send(relative, fd) if digest is None and send is not None \
            else source.read(relative, sink)
        os.fsync(fd)
    finally:
        os.close(fd)
    if count != size:
        # restic never rewrites a file; config is rewritten only by a new repository.
        raise _grown(relative, size, count)
    os.replace(tmp, target)
    return FileEntry(count, digest.hexdigest() if digest is not None else str(want))


def _fsync_dirs(directories: Iterable[Path]) -> None:
    for directory in sorted(set(directories)):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        except OSError:
            pass  # vfat/exFAT on some kernels refuse fsync on a directory: the files' hold
        finally:
            os.close(fd)


def _config_differs(source: RepositoryFiles, repository: Path, size: int) -> bool:
    """config is the one file not named by its content: compare its bytes (a few hundred)."""
    try:
        held = (repository / CONFIG).read_bytes()
    except OSError:
        return True
    if len(held) != size:
        return True
    pieces: list[bytes] = []
    source.read(CONFIG, lambda piece: pieces.append(bytes(piece)))
    return b"".join(pieces) != held


def mirror(source: RepositoryFiles, repository: Path) -> MirrorOutcome:
    """Make `repository` (on the medium) a copy of `source`, in the order above. Raises
    SourceChanged, DrBackupError (no config: not a repository), OSError (the medium)."""
    listed = list_source(source)
    held = on_medium(repository)
    had_config = CONFIG in held
    for name in DIRECTORIES:
        (repository / name).mkdir(parents=True, exist_ok=True)
    written: dict[str, FileEntry] = {}
    for kind in COPY_ORDER:
        todo = sorted(r for r, size in listed.items() if kind_of(r) == kind
                      and (held.get(r) != size or (r == CONFIG and
                                                   _config_differs(source, repository, size))))
        for directory in {(repository / r).parent for r in todo}:
            directory.mkdir(parents=True, exist_ok=True)
        workers = getattr(source, "workers", 2)
        if len(todo) > 1:
            with ThreadPoolExecutor(max_workers=workers,
                                    thread_name_prefix="media-mirror") as pool:
                done = list(pool.map(lambda r: _copy_file(source, r, listed[r], repository),
                                     todo))
        else:
            done = [_copy_file(source, r, listed[r], repository) for r in todo]
        written.update(zip(todo, done, strict=True))
        _fsync_dirs((repository / r).parent for r in todo)
    stale = sorted(r for r in held if r not in listed)  # leftover temporary files too
    for relative in stale:
        (repository / relative).unlink(missing_ok=True)  # a temporary name reused now
    _fsync_dirs((repository / r).parent for r in stale)
    expected = {r: expected_hash(r) or written.get(r, FileEntry(0, "")).sha256
                for r in listed}
    if CONFIG not in written:
        expected.pop(CONFIG)  # unchanged: checked against the previous manifest, if any
    log.info("mirror into %s: %d file(s) written, %d deleted", repository, len(written),
             len(stale))
    return MirrorOutcome(written, len(stale),
                         expected, sorted(r.split("/")[1] for r in listed
                                          if kind_of(r) == "snapshots"), had_config)
