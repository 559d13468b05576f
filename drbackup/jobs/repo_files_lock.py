"""This host's lock between a job that reads a repository's files directly and this host's
forget and prune, which delete them.

restic's own locks keep restic processes apart; the media export mirrors the repository's
files without restic (drbackup/jobs/media_mirror.py), so no restic lock stands between its
listing and its copy and a prune that removed a listed pack in between. On this host the two
take this flock on `<state_dir>/locks/<agency>@<store>.lock`: shared by the mirror (several
exports may read at once), exclusive by forget and prune (the daemon's jobs and the CLI's
alike: it is a file lock, so it holds across processes). A prune by another host is not
kept out by it; what it removed shows as a file gone from the source during the copy, or
fails restic's check of the medium, and the export fails in one line (docs/media.md).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from drbackup.errors import DrBackupError, ExitCode

LOCKS_DIR = "locks"
POLL_SECONDS = 0.5


class RepositoryFilesBusy(DrBackupError):
    exit_code = ExitCode.REPO_LOCKED


def lock_path(state_dir: Path, agency: str, store: str) -> Path:
    return state_dir / LOCKS_DIR / f"{agency}@{store}.lock"


@contextmanager
def repository_files_lock(state_dir: Path, agency: str, store: str, *, exclusive: bool,
                          wait: float, what: str) -> Iterator[None]:
    """Hold the lock (shared or exclusive) for the block, waiting up to `wait` seconds for
    the other side. Raises RepositoryFilesBusy (exit 11) when it is still held then."""
    path = lock_path(state_dir, agency, store)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        deadline = time.monotonic() + wait
        mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        while True:
            try:
                fcntl.flock(fd, mode)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    other = "a media export reads" if exclusive else "a forget or prune changes"
                    raise RepositoryFilesBusy(
                        f"{what} of {agency}@{store} waited {wait:.0f}s: {other} the "
                        "repository's files on this host", "run it again when that has "
                        "ended (or raise daemon.lock_wait)") from None
                time.sleep(POLL_SECONDS)
        yield
    finally:
        os.close(fd)
