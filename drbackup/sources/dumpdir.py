"""Dump drop-folders: the agency's own jobs write dump files into a folder; drbackup takes a file
only once it is complete (size and mtime unchanged for `settle`, or a `<name>.done` marker), backs
it up once, and remembers it (state kv) so the next run does not take it again.

Per-file mode streams each file through the dump guard (`python -m drbackup.sources.dumpdir`)
which fails, so restic makes no snapshot, if the file changes while it is read: a half-written
file can never become a snapshot."""

from __future__ import annotations

import fnmatch
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from drbackup.config.models import DumpdirSource
from drbackup.errors import SourceMissingError
from drbackup.sources.base import BackupPlan, DumpError, PlanContext
from drbackup.sources.dumps import PrivateDir, dump_plan, python_module

MARKER_SUFFIX = ".done"
CHUNK = 1 << 20


@dataclass(frozen=True)
class DropFile:
    path: Path
    size: int
    mtime_ns: int

    @property
    def fingerprint(self) -> str:
        return f"{self.size}:{self.mtime_ns}"


def memory_key(agency: str, source: str, name: str) -> str:
    return f"dumpdir:{agency}:{source}:{name}"


def _stat(path: Path) -> DropFile | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return DropFile(path, info.st_size, info.st_mtime_ns)


def ready_files(source: DumpdirSource, *, now: float | None = None) -> list[DropFile]:
    """Complete files of the folder, oldest first (not yet filtered by memory)."""
    if not source.path.is_dir():
        raise SourceMissingError(f"source {source.id!r}: drop folder {source.path} does not exist",
                                 "create it or fix sources.path; nothing was backed up")
    moment = time.time() if now is None else now
    settle = source.settle.total_seconds()
    found: list[DropFile] = []
    for entry in sorted(source.path.iterdir()):
        if not entry.is_file() or entry.name.startswith("."):
            continue
        if entry.name.endswith(MARKER_SUFFIX) or not fnmatch.fnmatch(entry.name, source.pattern):
            continue
        seen = _stat(entry)
        if seen is None:
            continue
        if source.marker:
            if not entry.with_name(entry.name + MARKER_SUFFIX).exists():
                continue
        elif moment - seen.mtime_ns / 1e9 < settle:
            continue
        found.append(seen)
    if found and not source.marker:
        # Size and mtime must hold still across a short look, too (clock skew, coarse mtimes).
        time.sleep(min(1.0, settle))
        found = [f for f in found if _stat(f.path) == f]
    return sorted(found, key=lambda f: (f.mtime_ns, f.path.name))


def plan_dumpdir(source: DumpdirSource, context: PlanContext) -> list[BackupPlan]:
    """Plans for files that are complete and not yet backed up; [] when there are none."""
    files = ready_files(source)
    if context.values is not None:
        files = [f for f in files if context.values.get_value(
            memory_key(context.agency, source.id, f.path.name)) != f.fingerprint]
    files = [f for f in files if f.size >= source.min_size]
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
            command = python_module("drbackup.sources.dumpdir", str(item.path), str(item.size),
                                    str(item.mtime_ns))
            plan = dump_plan(command, workdir=workdir, name=f"file{index}", min_size=item.size,
                             timeout=source.timeout, stdin_filename=item.path.name, env={},
                             tags=[f"file={item.path.name}", "format=file"],
                             label=f"dump file {item.path.name}")
            plan.after_success.append(_remember_one(remember, item))
            plans.append(plan)
        plans[-1].cleanup.append(workdir.cleanup)
    else:
        plan = BackupPlan(paths=[str(f.path) for f in files], extra_tags=["format=folder"],
                          label=f"{len(files)} dump file(s)")

        def check_unchanged(_snapshot: str | None, chosen: list[DropFile] = files) -> None:
            changed = [f.path.name for f in chosen if _stat(f.path) != f]
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


def stream_file(path: Path, size: int, mtime_ns: int, out: IO[bytes], err: IO[str]) -> int:
    """Copy the file to out; exit 1 when it is not exactly the complete file that was chosen."""
    try:
        with path.open("rb") as handle:
            copied = 0
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                out.write(chunk)
                copied += len(chunk)
    except OSError as exc:
        print(f"dumpdir: {path} cannot be read: {exc.strerror}", file=err)
        return 1
    out.flush()
    after = _stat(path)
    if copied != size or after is None or (after.size, after.mtime_ns) != (size, mtime_ns):
        print(f"dumpdir: {path} changed while it was read ({copied} bytes read, "
              f"{size} expected): not backed up", file=err)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3:
        print("usage: python -m drbackup.sources.dumpdir FILE SIZE MTIME_NS", file=sys.stderr)
        return 2
    return stream_file(Path(args[0]), int(args[1]), int(args[2]), sys.stdout.buffer, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())


