"""`drbackup restore` of a drop folder's directory dump (`pg_dump -Fd`) gives back the directory
the agency dropped, not the tar it was streamed as (drbackup/sources/pgdirdump.py): ready for
`pg_restore -Fd <target>/<name>`."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path, PurePosixPath

from drbackup.engine import Snapshot
from drbackup.errors import TargetRefusedError
from drbackup.jobs.tags import contained, tag_id, tag_values
from drbackup.sources.base import DumpError
from drbackup.sources.dumpformat import scratch_limit, unpack_directory

log = logging.getLogger(__name__)
_SUFFIX = ".tar"


def unpack_directory_dumps(snapshot: Snapshot, target_dir: Path) -> list[Path]:
    """Unpack the restored `<name>.tar` of a directory-dump snapshot (kind=dumpdir,
    format=directory) into `<target_dir>/<name>/` (flat plain files only, bounded by the free
    space) and remove the tar; returns the directories made. One that cannot be unpacked (or
    whose directory exists already) is left as the tar, said in a warning."""
    if tag_id(snapshot, "kind") != "dumpdir" or tag_values(snapshot, "format") != ["directory"]:
        return []
    made: list[Path] = []
    for path in snapshot.paths:
        entry = PurePosixPath(path)
        if entry.parent != PurePosixPath("/") or not entry.name.endswith(_SUFFIX):
            continue
        try:
            archive = contained(target_dir, entry.name)
            directory = contained(target_dir, entry.name[:-len(_SUFFIX)])
        except TargetRefusedError:
            continue
        if directory.exists() or directory.is_symlink() or not archive.is_file():
            log.warning("directory dump %s left as it was restored: %s exists", archive,
                        directory, extra={"event": "restore_directory_dump_kept"})
            continue
        try:
            unpack_directory(archive, directory, scratch_limit(target_dir))
        except DumpError as exc:
            shutil.rmtree(directory, ignore_errors=True)
            log.warning("directory dump %s left as it was restored (a tar): %s", archive,
                        exc.message, extra={"event": "restore_directory_dump_kept"})
            continue
        archive.unlink()
        made.append(directory)
    return made
