"""Reading a medium back: every file under agencies/ walked without following links, hashed
(SHA-256) from the medium itself rather than the page cache, and compared with the manifest.
One problem per line: missing, extra, altered, truncated, not a plain file.

Files are hashed by a few threads at once: os.read and hashlib release the GIL, so one file's
read from the medium overlaps another's SHA-256; one thread alone waits for each in turn and
ran at about half the raw read speed of the same files (bench/media.py, BENCHMARKS.md)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from drbackup.media.layout import AGENCIES, is_lock
from drbackup.media.manifest import FileEntry, Manifest

# 256 KiB stays in the CPU's cache between the read and the hash; 1 MiB ran 5-10 % slower.
CHUNK = 256 * 1024
# Three or four: one thread's read waits on the medium while the others hash; with two on a
# 2-core host the read-back ran at 0.75-0.9 of cat's speed, with three at cat's (bench/media.py).
# More only adds seeks on a USB disk.
_BUFFERS = threading.local()  # one read buffer per hashing thread
WORKERS = max(3, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class Problem:
    path: str
    what: str  # missing | extra | altered | truncated | not-a-file

    def line(self) -> str:
        return f"{self.path}: {self.what}"


def walk(medium: Path) -> Iterator[tuple[str, os.stat_result]]:
    """(relative path, lstat) of every entry under agencies/, links and odd files included
    (the caller refuses them), directories descended without following links."""
    root = medium / AGENCIES
    if not root.is_dir() or root.is_symlink():
        return
    stack = [root]
    while stack:
        directory = stack.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    stack.append(Path(entry.path))
                else:
                    yield Path(entry.path).relative_to(medium).as_posix(), info


def hash_file(path: Path, *, cold: bool = False) -> tuple[int, str]:
    """(size, sha256) of a plain file, opened without following a link. cold: flush the file
    and drop it from the page cache first, so the bytes come from the medium."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        if cold:
            with contextlib.suppress(OSError):
                os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        # Into one reused buffer: a fresh 4 MiB bytes per os.read cost a page fault per 4 KiB
        # and ran the read-back at two thirds of this speed.
        buffer = getattr(_BUFFERS, "buffer", None)
        if buffer is None:
            buffer = _BUFFERS.buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        digest, size = hashlib.sha256(), 0
        while count := os.readv(fd, [buffer]):
            digest.update(view[:count])
            size += count
        return size, digest.hexdigest()
    finally:
        os.close(fd)


def hash_files(medium: Path, relatives: Iterable[str], *, cold: bool
                ) -> dict[str, tuple[int, str]]:
    """(size, sha256) of each file, hashed by WORKERS threads. Raises OSError as hash_file."""
    paths = list(relatives)
    if len(paths) < 2:
        return {p: hash_file(medium / p, cold=cold) for p in paths}
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="media-hash") as pool:
        return dict(zip(paths, pool.map(lambda p: hash_file(medium / p, cold=cold), paths),
                        strict=True))


def inventory(medium: Path, *, agencies: set[str], cold: bool = True
              ) -> tuple[dict[str, FileEntry], list[Problem]]:
    """Every file of the given agencies' parts of the medium with its size and hash (locks
    left out), and the entries that are not plain files. Every file is hashed, old ones too:
    the point of a read-back is that nothing is taken on trust."""
    regular: list[str] = []
    problems: list[Problem] = []
    for relative, info in walk(medium):
        if relative.split("/")[1] not in agencies or is_lock(relative):
            continue
        if not stat.S_ISREG(info.st_mode):
            problems.append(Problem(relative, "not-a-file"))
            continue
        regular.append(relative)
    hashed = hash_files(medium, regular, cold=cold)
    return {p: FileEntry(*hashed[p]) for p in regular}, problems


def compare(manifest: Manifest, medium: Path, *, cold: bool = True, prefix: str = "",
            unhashed: Callable[[str], bool] | None = None) -> list[Problem]:
    """What differs between the medium (the part under `prefix`) and its manifest, one Problem
    each, in path order, missing files last. Files `unhashed` selects are checked by name and
    size only."""
    listed = {p: f for p, f in manifest.files.items() if p.startswith(prefix)}
    problems: list[Problem] = []
    seen: set[str] = set()
    to_hash: list[str] = []
    for relative, info in sorted(walk(medium)):
        if not relative.startswith(prefix) or is_lock(relative):
            continue
        expected = listed.get(relative)
        if expected is None:
            problems.append(Problem(relative, "extra (not in the manifest)"))
            continue
        seen.add(relative)
        if not stat.S_ISREG(info.st_mode):
            problems.append(Problem(relative, "not a plain file"))
            continue
        if info.st_size != expected.size:
            problems.append(Problem(relative, f"truncated or grown ({info.st_size} bytes, "
                                              f"manifest says {expected.size})"))
            continue
        if unhashed is None or not unhashed(relative):
            to_hash.append(relative)
    hashed = hash_files(medium, to_hash, cold=cold)
    for relative in to_hash:
        expected = listed[relative]
        if hashed[relative] != (expected.size, expected.sha256):
            problems.append(Problem(relative, "altered (SHA-256 differs from the manifest)"))
    problems.sort(key=lambda p: p.path)
    for relative in sorted(set(listed) - seen):
        problems.append(Problem(relative, "missing"))
    return problems
