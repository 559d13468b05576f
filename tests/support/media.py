"""Removable media for the offline-copy tests (#19): a filesystem image (ext4, vfat, exFAT)
made by the test and loop-mounted as root; where no loop device can be had, a plain directory,
and the test says so (a warning naming the reason), never silently. A kernel without the exFAT
driver (this CI's container kernel has ext4 but neither vfat nor exfat) gets the image on a
loop device through exfat-fuse: the same on-disk exFAT, a userspace driver."""

from __future__ import annotations

import shutil
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MKFS = {"ext4": ["mkfs.ext4", "-q", "-F"], "vfat": ["mkfs.vfat"], "exfat": ["mkfs.exfat"]}


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False)


@contextmanager
def medium(root: Path, fs: str, size_mib: int = 96) -> Iterator[tuple[Path, str]]:
    """A mounted medium of filesystem `fs` at root/mnt: (mount point, what it really is:
    'ext4 image', 'vfat image' or 'plain directory (<reason>)')."""
    mountpoint = root / "mnt"
    mountpoint.mkdir(parents=True, exist_ok=True)
    reason = None
    tool = MKFS[fs][0]
    if shutil.which(tool) is None:
        reason = f"{tool} not installed (scripts/setup.sh installs dosfstools/exfatprogs)"
    elif _run("losetup", "-f").returncode != 0:
        reason = "no free loop device (losetup -f failed)"
    image = root / f"medium-{fs}.img"
    if reason is None:
        with image.open("wb") as handle:
            handle.truncate(size_mib * 1024 * 1024)
        made = _run(*MKFS[fs], str(image))
        mounted, how = made, fs
        if made.returncode == 0:
            if fs in _kernel_filesystems() or fs != "exfat":
                mounted = _run("mount", "-o", "loop", str(image), str(mountpoint))
            else:
                loop = _run("losetup", "-f", "--show", str(image))
                device = loop.stdout.strip()
                mounted = loop if loop.returncode != 0 else _run(
                    "mount.exfat-fuse", device, str(mountpoint))
                how = "exfat (exfat-fuse on a loop device)"
        if mounted.returncode != 0:
            reason = f"cannot make or mount a {fs} image: {mounted.stderr.strip()[:200]}"
    if reason is not None:
        warnings.warn(f"offline-media test on a plain directory, not a {fs} filesystem: "
                      f"{reason}", stacklevel=2)
        yield mountpoint, f"plain directory ({reason})"
        return
    try:
        yield mountpoint, f"{how} image"
    finally:
        _run("umount", "-l", str(mountpoint))
        _detach(image)
        image.unlink(missing_ok=True)


def _kernel_filesystems() -> set[str]:
    return {line.split()[-1] for line in Path("/proc/filesystems").read_text().splitlines()}


def _detach(image: Path) -> None:
    found = _run("losetup", "-j", str(image)).stdout
    for line in found.splitlines():
        _run("losetup", "-d", line.split(":")[0])


def pull(mountpoint: Path) -> None:
    """The medium is pulled out: a lazy unmount, the mount point left empty at once."""
    _run("umount", "-l", str(mountpoint))


@contextmanager
def read_only(medium: Path, at: Path) -> Iterator[tuple[Path, bool]]:
    """The medium as a host that may not write to it sees it (#19 §4): bind-mounted read-only
    at `at`; (path, True). Where bind mounts cannot be made, the medium itself and False, with
    a warning that says so."""
    at.mkdir(parents=True, exist_ok=True)
    bound = _run("mount", "--bind", str(medium), str(at))
    made = bound if bound.returncode != 0 else _run("mount", "-o", "remount,bind,ro", str(at))
    if made.returncode != 0:
        if bound.returncode == 0:
            _run("umount", str(at))
        warnings.warn("read-only medium test on a writable directory: cannot bind-mount it "
                      f"read-only: {made.stderr.strip()[:200]}", stacklevel=2)
        yield medium, False
        return
    try:
        yield at, True
    finally:
        _run("umount", "-l", str(at))


def replug(mountpoint: Path, fs: str) -> bool:
    """The pulled medium plugged in again: its image (made by `medium`) mounted anew at the
    same mount point, after what was written into the bare mount point meanwhile is removed
    (a real host would have it on its own disk). False when it cannot be mounted."""
    image = mountpoint.parent / f"medium-{fs}.img"
    for entry in list(mountpoint.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return _run("mount", "-o", "loop", str(image), str(mountpoint)).returncode == 0


@contextmanager
def read_only_copy(content: Path, root: Path, size_mib: int = 96) -> Iterator[Path]:
    """The medium's content on an ext4 image (mkfs.ext4 -d) loop-mounted read-only, as a
    one-way import device or a write-protected disk presents it. Skips the test (saying why)
    where no loop device can be mounted."""
    import pytest

    root.mkdir(parents=True, exist_ok=True)
    image, mountpoint = root / "read-only.img", root / "ro"
    mountpoint.mkdir(exist_ok=True)
    with image.open("wb") as handle:
        handle.truncate(size_mib * 1024 * 1024)
    made = _run("mkfs.ext4", "-q", "-F", "-d", str(content), str(image))
    mounted = made if made.returncode != 0 else _run(
        "mount", "-o", "loop,ro", str(image), str(mountpoint))
    if mounted.returncode != 0:
        image.unlink(missing_ok=True)
        pytest.skip(f"no read-only loop mount here: {mounted.stderr.strip()[:200]}")
    try:
        yield mountpoint
    finally:
        _run("umount", "-l", str(mountpoint))
        _detach(image)
        image.unlink(missing_ok=True)
