"""What export, verify and import share: the restic target of an agency's repository on a
medium, the one-at-a-time lock of media work on a host, the trusted key."""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from drbackup.config.models import AgencyConfig
from drbackup.engine import RepoTarget
from drbackup.errors import AlreadyRunningError, UsageError
from drbackup.media.layout import repository
from drbackup.verify.evidence import load_public_key

LOCK_FILE = "media.lock"


def medium_target(medium: Path, agency: AgencyConfig, label: str = "", *,
                  read_only: bool = False) -> RepoTarget:
    """The agency's repository on the medium. read_only: opened without restic's lock, so a
    medium mounted read-only (or behind a one-way import device) can be checked and copied
    from; verify and import never write to the medium they read."""
    return RepoTarget(str(repository(medium, agency.id)), agency.password_file,
                      label=f"{agency.id}@medium{':' + label if label else ''}",
                      no_lock=read_only)


def medium_root(path: Path) -> Path:
    """The medium's mount point or directory, as given, checked to be a directory (not a link).

    Raises UsageError."""
    if path.is_symlink() or not path.is_dir():
        raise UsageError(f"{path} is not a directory", "pass the mount point of the medium")
    return path.resolve()


@contextmanager
def media_lock(state_dir: Path) -> Iterator[None]:
    """One media command at a time on this host (the daemon's jobs take restic's locks)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise AlreadyRunningError("another 'drbackup media' command is running on "
                                          "this host", "wait for it to end") from None
            raise
        yield
    finally:
        os.close(fd)


def trusted_key(public_key: Path | None, state_dir: Path | None) -> Ed25519PublicKey | None:
    """--public-key, else this host's own evidence key (when there is a state directory
    holding one); None when neither exists."""
    if public_key is not None:
        return load_public_key(public_key)
    if state_dir is not None:
        own = state_dir / "evidence" / "ed25519.pub.pem"
        if own.is_file():
            return load_public_key(own)
    return None


def require_trusted(key: Ed25519PublicKey | None) -> Ed25519PublicKey:
    if key is None:
        raise UsageError("no key to check the medium's signature with",
                         "pass --public-key EXPORTING_HOST.pub.pem (its "
                         "<state_dir>/evidence/ed25519.pub.pem, obtained out of band)")
    return key
