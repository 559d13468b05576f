"""Dump drop-folders: the agency's own jobs write dump files into a folder; drbackup takes a file
only once it is complete (size and mtime unchanged for `settle`, or a `<name>.done` marker), backs
it up once, and remembers it (state kv) so the next run does not take it again.

Per-file mode streams each file through the dump guard (`python -m drbackup.sources.dumpdir`)
which fails, so restic makes no snapshot, if the file changes while it is read: a half-written
file can never become a snapshot. A pg_dump directory-format dump (a directory holding toc.dat)
is taken as one dump, streamed as a tar (drbackup/sources/pgdirdump.py)."""

from __future__ import annotations

import fnmatch
import logging
import os
import stat
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from drbackup.config.models import DumpdirSource
from drbackup.errors import SourceMissingError
from drbackup.sources.base import BackupPlan, DumpError, PlanContext
from drbackup.sources.dumps import PrivateDir, dump_plan, python_module
from drbackup.sources.nofollow import Identity, entry_refusal, open_selected, refuse_links
from drbackup.sources.pgdirdump import DirSummary, inspect_directory, stream_directory

MARKER_SUFFIX = ".done"
CHUNK = 1 << 20
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DropFile:
    path: Path
    size: int
    mtime_ns: int
    dev: int = 0
    ino: int = 0
    blocks: int = 0  # st_blocks: allocated 512-byte blocks
    directory: bool = False  # a pg_dump -Fd directory: size, mtime and blocks of its files

    @property
    def fingerprint(self) -> str:
        return f"{self.size}:{self.mtime_ns}"

    @property
    def identity(self) -> Identity:
        return Identity(self.dev, self.ino)

    @property
    def cost(self) -> int:
        """Bytes this file costs a run: its size, or its allocation when that is larger."""
        return max(self.size, self.blocks * 512)


@dataclass(frozen=True)
class Skipped:
    """A drop-folder entry that was not taken, and why (logged, counted; never fatal)."""

    name: str
    reason: str


@dataclass
class Selection:
    files: list[DropFile] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)  # ready, left for the next run (caps)


def memory_key(agency: str, source: str, name: str) -> str:
    return f"dumpdir:{agency}:{source}:{name}"


def _directory_dump(path: Path) -> tuple[DropFile | None, str | None]:
    summary, why = inspect_directory(path)
    if summary is None:
        return None, why
    return DropFile(path, summary.size, summary.mtime_ns, summary.dev, summary.ino,
                    summary.blocks, directory=True), None


def _lstat(path: Path) -> DropFile | None:
    """The entry as it is, links not followed; None when gone or not a single-link file (or
    a directory dump fit to be taken)."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISDIR(info.st_mode):
        return _directory_dump(path)[0]
    if entry_refusal(info) is not None:
        return None
    return DropFile(path, info.st_size, info.st_mtime_ns, info.st_dev, info.st_ino,
                    info.st_blocks)


def name_refusal(name: str) -> str | None:
    """Why a file name cannot become a snapshot's `file=` tag and stdin name, or None."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "has a name that is not valid UTF-8"
    if "," in name:
        # restic splits --tag on commas: the name would add tags of the agency's choosing.
        return "has a comma in its name (restic would split it into extra tags)"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "has a control character (e.g. a newline) in its name"
    return None


def _marker_present(folder: Path, name: str) -> bool:
    try:
        info = os.lstat(folder / (name + MARKER_SUFFIX))
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode)


def select_files(source: DumpdirSource, *, now: float | None = None) -> Selection:
    """Complete single-link regular files of the folder, oldest first (not yet filtered by
    memory or caps), and every entry refused with its reason. Links are never followed.

    Raises SourceMissingError when the folder is missing or any component of its path is a
    symlink."""
    refuse_links(source.id, "drop folder", source.path)
    try:
        folder_info = os.lstat(source.path)
    except OSError:
        folder_info = None
    if folder_info is None or not stat.S_ISDIR(folder_info.st_mode):
        raise SourceMissingError(f"source {source.id!r}: drop folder {source.path} does not exist",
                                 "create it or fix sources.path; nothing was backed up")
    moment = time.time() if now is None else now
    settle = source.settle.total_seconds()
    selection = Selection()
    try:
        with os.scandir(source.path) as scan:
            entries = sorted(scan, key=lambda e: e.name)
    except OSError as exc:
        raise SourceMissingError(f"source {source.id!r}: drop folder {source.path} cannot be "
                                 f"listed: {exc.strerror}", "check its permissions") from None
    for entry in entries:
        name = entry.name
        if name.startswith(".") or name.endswith(MARKER_SUFFIX):
            continue
        if not fnmatch.fnmatch(name, source.pattern):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        is_dir = stat.S_ISDIR(info.st_mode)
        reason = (None if is_dir else entry_refusal(info)) or name_refusal(name)
        found: DropFile | None = None
        if reason is None and is_dir:
            found, reason = _directory_dump(Path(entry.path))
            if found is not None and not source.per_file:
                reason = ("is a pg_dump directory-format dump, taken with per_file = true "
                          "only")
        if reason is not None:
            selection.skipped.append(Skipped(name, reason))
            continue
        seen = found or DropFile(Path(entry.path), info.st_size, info.st_mtime_ns,
                                 info.st_dev, info.st_ino, info.st_blocks)
        if source.marker:
            if not _marker_present(source.path, name):
                continue
        elif moment - seen.mtime_ns / 1e9 < settle:
            continue
        selection.files.append(seen)
    if selection.files and not source.marker:
        # Size and mtime must hold still across a short look, too (clock skew, coarse mtimes).
        time.sleep(min(1.0, settle))
        selection.files = [f for f in selection.files if _lstat(f.path) == f]
    selection.files.sort(key=lambda f: (f.mtime_ns, f.path.name))
    return selection


def ready_files(source: DumpdirSource, *, now: float | None = None) -> list[DropFile]:
    """Complete files of the folder, oldest first (not yet filtered by memory)."""
    return select_files(source, now=now).files


def apply_caps(source: DumpdirSource, selection: Selection) -> Selection:
    """At most max_files files and max_bytes bytes (allocation or size, the larger) per run;
    the rest is left for the next run. A single file above max_bytes is refused."""
    taken: list[DropFile] = []
    total = 0
    for item in selection.files:
        if item.cost > source.max_bytes:
            selection.skipped.append(Skipped(item.path.name, (
                f"is larger ({item.cost} bytes, size or allocation) than max_bytes "
                f"({source.max_bytes})")))
            continue
        if len(taken) >= source.max_files or total + item.cost > source.max_bytes:
            selection.deferred.append(item.path.name)
            continue
        taken.append(item)
        total += item.cost
    selection.files = taken
    return selection


def _drop_small(source: DumpdirSource, selection: Selection) -> Selection:
    """Empty files and files below min_size are not taken, and said so each run (an empty
    stdin is no snapshot for restic; a failed dump job leaves one behind)."""
    kept: list[DropFile] = []
    for item in selection.files:
        if item.size == 0:
            selection.skipped.append(Skipped(item.path.name, "is empty"))
        elif item.size < source.min_size:
            selection.skipped.append(Skipped(item.path.name, (
                f"is smaller ({item.size} bytes) than min_size ({source.min_size})")))
        else:
            kept.append(item)
    selection.files = kept
    return selection


def _report(source: DumpdirSource, context: PlanContext, selection: Selection) -> None:
    fields = {"agency": context.agency, "source": source.id}
    for item in selection.skipped:
        log.warning("drop folder %s: %r not backed up: it %s", source.path, item.name,
                    item.reason, extra=fields)
    if selection.deferred:
        log.info("drop folder %s: %d ready file(s) left for the next run (max_files %d, "
                 "max_bytes %d per run)", source.path, len(selection.deferred),
                 source.max_files, source.max_bytes, extra=fields)


def plan_dumpdir(source: DumpdirSource, context: PlanContext) -> list[BackupPlan]:
    """Plans for files that are complete and not yet backed up; [] when there are none."""
    selection = select_files(source)
    if context.values is not None:
        values = context.values
        selection.files = [f for f in selection.files if values.get_value(
            memory_key(context.agency, source.id, f.path.name)) != f.fingerprint]
    selection = _drop_small(source, selection)
    files = apply_caps(source, selection).files
    _report(source, context, selection)
    if not files:
        return []

    def remember(chosen: list[DropFile]) -> None:
        if context.values is not None:
            for item in chosen:
                context.values.set_value(memory_key(context.agency, source.id, item.path.name),
                                         item.fingerprint)

    plans: list[BackupPlan] = []
    if source.per_file:
        workdir = PrivateDir("drbackup-dumpdir-")
        for index, item in enumerate(files):
            command = python_module("drbackup.sources.dumpdir",
                                    *(["--directory"] if item.directory else []),
                                    str(item.path), str(item.size), str(item.mtime_ns),
                                    str(item.dev), str(item.ino))
            # A directory dump becomes one tar file in the snapshot, and says so in its name.
            plan = dump_plan(command, workdir=workdir, name=f"file{index}", min_size=item.size,
                             timeout=source.timeout,
                             stdin_filename=item.path.name + (".tar" if item.directory else ""),
                             env={}, tags=[f"file={item.path.name}",
                                           "format=directory" if item.directory else "format=file"],
                             label=f"dump {'directory' if item.directory else 'file'} "
                                   f"{item.path.name}")
            plan.after_success.append(_remember_one(remember, item))
            plans.append(plan)
        plans[-1].cleanup.append(workdir.cleanup)
    else:
        plan = BackupPlan(paths=[str(f.path) for f in files], extra_tags=["format=folder"],
                          label=f"{len(files)} dump file(s)")

        def check_unchanged(_snapshot: str | None, chosen: list[DropFile] = files) -> None:
            changed = [f.path.name for f in chosen if _lstat(f.path) != f]
            if changed:
                raise DumpError(f"dump file(s) changed while they were backed up: "
                                f"{', '.join(changed[:5])}",
                                "the snapshot was removed; the files are taken again once they "
                                "are complete")
            remember(chosen)

        plan.after_success.append(check_unchanged)
        plans.append(plan)
    return plans


def _remember_one(remember: Callable[[list[DropFile]], None], item: DropFile
                  ) -> Callable[[str | None], None]:
    def action(_snapshot: str | None) -> None:
        remember([item])
    return action


def stream_file(path: Path, expected: DropFile, out: IO[bytes], err: IO[str]) -> int:
    """Copy the file to out; exit 1 when it is not exactly the complete file that was chosen
    (opened without following links, the same inode, unchanged while read)."""
    try:
        fd = open_selected(path, expected.identity)
    except OSError as exc:
        print(f"dumpdir: {path} cannot be read: {exc.strerror}", file=err)
        return 1
    with os.fdopen(fd, "rb") as handle:
        copied = 0
        try:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                out.write(chunk)
                copied += len(chunk)
        except OSError as exc:
            print(f"dumpdir: {path} cannot be read: {exc.strerror}", file=err)
            return 1
        out.flush()
        after = os.fstat(handle.fileno())
    now = _lstat(path)
    if (copied != expected.size or (after.st_size, after.st_mtime_ns) != (expected.size,
                                                                          expected.mtime_ns)
            or now is None or now.identity != expected.identity):
        print(f"dumpdir: {path} changed while it was read ({copied} bytes read, "
              f"{expected.size} expected): not backed up", file=err)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    directory = bool(args) and args[0] == "--directory"
    if directory:
        args = args[1:]
    if len(args) != 5:
        print("usage: python -m drbackup.sources.dumpdir [--directory] FILE SIZE MTIME_NS DEV "
              "INO", file=sys.stderr)
        return 2
    size, mtime_ns, dev, ino = (int(a) for a in args[1:])
    if directory:
        return stream_directory(Path(args[0]), DirSummary(size, mtime_ns, dev, ino, 0),
                                sys.stdout.buffer, sys.stderr)
    expected = DropFile(Path(args[0]), size, mtime_ns, dev, ino)
    return stream_file(Path(args[0]), expected, sys.stdout.buffer, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
