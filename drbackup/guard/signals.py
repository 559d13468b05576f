"""What one backup of a directory source shows, for the verdict: the guard's own walk of the
source compared with the previous listing, a bounded sample of the changed files read back,
and restic's summary (the bytes it added and what they took in the repository).

`Collector.prepare` runs beside restic (drbackup/jobs/guard.py starts it in a thread when the
backup starts): it walks the source (drbackup/guard/walk.py), compares every file's lstat with
the previous listing as restic compares with its parent (size, mtime, ctime, inode), and reads
a sample of the changed files (at most `sample_files` files and `sample_bytes` bytes,
`file_bytes` per file) with content.look, which opens without following links and never
raises: an unreadable or vanished file is counted, not fatal. A file whose ctime is not before
the backup's start changed while restic ran: the walk cannot tell which version restic stored,
so it is listed unsettled and compared as modified again at the next backup. (Without that a
change would still be seen at this backup or the next, as the sample is read after the walk's
lstat: a version newer than restic's is judged now, an older one differs next time.)
`Collector.finish` runs once restic's summary is there.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import stat
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from drbackup.guard import content, indicators, listing
from drbackup.guard.listing import ENCRYPTED, NOT_LOOKED, OK, PLAIN, RANDOM, Entry, Listing
from drbackup.guard.walk import Walk

# A backup whose added bytes took at least this share in the repository did not compress:
# restic stores random data as it is.
INCOMPRESSIBLE = 0.95
# ...counted against the unsampled changed files of compressible formats (text, CSV, source)
# only when restic added about all the changed bytes (not deduplicated: >= this share of
# their sizes) and those files make at least COMPRESSIBLE_SHARE of them: then plain text
# among them would have pulled the ratio well below INCOMPRESSIBLE.
REWRITTEN_SHARE = 0.9
COMPRESSIBLE_SHARE = 0.5
MIN_COMPRESSIBLE_SIZE = 4096
# restic's tree metadata per changed or gone file, allowed for before renamed files count as
# rewritten by the bytes restic added.
TREE_BYTES_PER_FILE = 1024
EXTRAPOLATE_SHARE = 0.25
HEAD_BYTES = 2048  # below content.MIN_WINDOW: the signature is read, no randomness test
UNKNOWN_BYTES = 16 * 1024  # two windows: head and tail
# Ordinary files also match these; they count only with other signs.
BROAD_EXTENSIONS = frozenset({".enc"})
BROAD_NOTES = frozenset({"*_readme.txt"})
# A file's ctime may be this much behind the moment it changed (the kernel stamps files with
# its coarse clock: one tick, 1-10 ms). Not more: a file written just before a backup is
# settled, or it would be counted twice (modified now, and again at the next backup).
UNSETTLED_SLACK_NS = 20_000_000


@dataclass(frozen=True)
class SampleLimits:
    files: int
    bytes: int
    file_bytes: int


@dataclass(frozen=True)
class Changed:
    """A new or modified file and its size (lstat of the walk)."""

    path: str
    size: int


def _lstat(path: str) -> os.stat_result | None:
    """The file's lstat when it is there and not a directory."""
    try:
        st = os.lstat(path)
    except (OSError, ValueError):
        return None
    return None if stat.S_ISDIR(st.st_mode) else st


def _under(path: str, directories: Sequence[str]) -> bool:
    return any(path.startswith(d.rstrip("/") + "/") for d in directories)


@dataclass
class Signals:
    """The numbers behind a verdict; every field is reported."""

    files: int = 0
    parent_files: int | None = None  # None: no earlier assessed snapshot
    new: int = 0
    modified: int = 0
    gone: int = 0
    ignored: int = 0
    sampled: int = 0
    encrypted: int = 0
    magic_mismatch: int = 0
    random: int = 0
    unreadable: int = 0
    bytes_read: int = 0
    incompressible: int = 0
    prior_encrypted: int = 0
    estimated: int = 0
    hits: int = 0
    notes: int = 0
    note_dirs: int = 0
    note_names: list[str] = field(default_factory=list)
    broad_notes: int = 0
    ransom_extensions: int = 0
    extension_names: list[str] = field(default_factory=list)
    renames: int = 0
    renames_changed: int = 0
    data_added: int = 0
    data_added_packed: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def churn(self) -> float | None:
        if not self.parent_files:
            return None
        return (self.modified + self.gone) / self.parent_files

    @property
    def stored_ratio(self) -> float | None:
        return self.data_added_packed / self.data_added if self.data_added else None


def _ignored(path: str, globs: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(path, glob) for glob in globs)


def _order(path: str, salt: str) -> bytes:
    return hashlib.blake2b(f"{salt}\0{path}".encode("utf-8", "surrogateescape"),
                           digest_size=8).digest()


def _look_code(look: content.ContentLook) -> str:
    if look.kind == "encrypted":
        return ENCRYPTED
    # Before "ok": content.look calls a non-random file of an unknown format "ok".
    if look.format is None and look.windows:
        return RANDOM if look.random_windows else PLAIN
    if look.kind == "ok":
        return OK
    return NOT_LOOKED


class Collector:
    """One backup's view of a source against the previous listing."""

    def __init__(self, previous: Listing | None, *, ignore: Sequence[str] = ()):
        self.previous = previous
        self.ignore = tuple(ignore)
        self.current = Listing(None)
        self.changed: list[Changed] = []
        self.gone: dict[str, int] = {}
        self.looks: dict[str, content.ContentLook] = {}
        self.packed: bytes | None = None
        self._judged = False
        self._counted = False
        self._new_sizes: dict[str, int] = {}
        self._pairs: list[tuple[str, str]] = []
        self._unsampled = 0
        self._compressible: list[Changed] = []
        # Files ignored now do not count, though the previous listing may hold them.
        self.signals = Signals(parent_files=sum(
            1 for path in previous.entries if not _ignored(path, self.ignore))
            if previous else None)

    def prepare(self, walk: Walk, limits: SampleLimits, *, started_ns: int,
                cancel: threading.Event | None = None, extra_notes: Sequence[str] = (),
                extra_extensions: Sequence[str] = ()) -> None:
        """Walk, compare, sample, count: everything that needs no word from restic."""
        self.compare(walk, started_ns=started_ns)
        previous = self.previous.snapshot_id if self.previous else None
        self.sample(limits, f"{previous}:{started_ns}", cancel=cancel)
        self._precount(extra_notes, extra_extensions)
        # The listing's lines, packed now; finish drops them if restic's summary marks more
        # files (incompressible).
        self.packed = listing.body(self.current)

    def compare(self, walk: Walk, *, started_ns: int) -> None:
        """The walk against the previous listing: modified (size, mtime, ctime or inode not as
        listed, or listed unsettled), new, gone. Once per file of the source: kept lean."""
        s = self.signals
        previous = self.previous.entries if self.previous else {}
        current = self.current.entries
        changed = self.changed
        ignore = self.ignore
        unsettled = started_ns - UNSETTLED_SLACK_NS

        def see(path: str, st: os.stat_result) -> None:
            size, mtime, ctime, ino = st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino
            before = previous.get(path)
            if ctime >= unsettled:
                ino = 0  # changed while restic ran: compared as modified next time too
            elif before is not None and before.same_file(size, mtime, ctime, ino):
                current[path] = before  # shared: only changed files get looks written
                return
            current[path] = Entry(size, NOT_LOOKED, mtime, ctime, ino)
            changed.append(Changed(path, size))

        for path, st in walk.files():
            if ignore and _ignored(path, ignore):
                s.ignored += 1
                continue
            see(path, st)
        for path in previous:
            if path in current or (ignore and _ignored(path, ignore)):
                continue
            if walk.unlisted and _under(path, walk.unlisted):
                # Its directory could not be listed: the file itself is asked.
                found = _lstat(path)
                if found is not None:
                    see(path, found)
                    continue
            elif walk.excludes and walk.excludes.excluded(path):
                continue  # excluded since: restic no longer stores it, not a deletion
            self.gone[path] = previous[path].size

    def finish(self, snapshot_id: str | None, *, data_added: int, data_added_packed: int,
               extra_notes: Sequence[str] = (),
               extra_extensions: Sequence[str] = ()) -> Signals:
        """Count, with restic's summary. Reads nothing of the source."""
        s = self.signals
        self.current.snapshot_id = snapshot_id
        s.data_added, s.data_added_packed = data_added, data_added_packed
        self._precount(extra_notes, extra_extensions)
        self._renames()
        self._hits()
        return s

    def _precount(self, extra_notes: Sequence[str], extra_extensions: Sequence[str]) -> None:
        """The counts that need no summary (once; beside restic when prepared)."""
        if self._counted:
            return
        self._counted = True
        s = self.signals
        previous = self.previous.entries if self.previous else {}
        s.files = len(self.current.entries)
        s.gone = len(self.gone)
        s.new = sum(1 for i in self.changed if i.path not in previous)
        s.modified = len(self.changed) - s.new
        self.judge_sample()
        self._names(extra_notes, extra_extensions)
        if self.gone:
            self._new_sizes = {i.path: i.size for i in self.changed if i.path not in previous}
            self._pairs = indicators.mass_renames(self.gone, self._new_sizes, grow=4096)
        for item in self.changed:
            if item.path in self.looks or item.size <= 0:
                continue
            self._unsampled += 1
            known = content.format_for(posixpath.basename(item.path))
            if known and not known[1].random_expected and item.size >= MIN_COMPRESSIBLE_SIZE:
                self._compressible.append(item)

    def _names(self, extra_notes: Sequence[str], extra_extensions: Sequence[str]) -> None:
        s = self.signals
        note_dirs: set[str] = set()
        names: set[str] = set()
        extensions: set[str] = set()
        previous = self.previous.entries if self.previous else {}
        for item in self.changed:
            glob = indicators.which_note(item.path, extra_notes)
            if glob is not None:
                if glob in BROAD_NOTES:
                    s.broad_notes += 1
                else:
                    s.notes += 1
                    note_dirs.add(posixpath.dirname(item.path))
                    names.add(posixpath.basename(item.path))
            ext = indicators.ransom_extension(item.path, extra_extensions)
            if ext is not None and ext not in BROAD_EXTENSIONS and item.path not in previous:
                s.ransom_extensions += 1
                extensions.add(ext)
        s.note_dirs = len(note_dirs)
        s.note_names = sorted(names)[:5]
        s.extension_names = sorted(extensions)[:5]

    def sample(self, limits: SampleLimits, salt: str, *,
               cancel: threading.Event | None = None) -> None:
        """Modified files first (an attack rewrites what exists), then new ones, each in a
        reproducible pseudo-random order; within the file and byte budgets."""
        previous = self.previous.entries if self.previous else {}
        candidates = sorted(
            (i for i in self.changed if i.size > 0),
            key=lambda i: (i.path not in previous, _order(i.path, salt)))
        looks = self.looks
        budget = limits.bytes
        for item in candidates:
            if len(looks) >= limits.files or budget <= 0 or (
                    cancel is not None and cancel.is_set()):
                break
            known = content.format_for(posixpath.basename(item.path))
            per_file = limits.file_bytes
            if known is None:
                before = previous.get(item.path)
                if before is not None and before.look == RANDOM:
                    continue  # random before, in a format that may be: nothing to learn
                # Only "random or not" is asked of a format drbackup does not know: the head
                # and the tail windows tell.
                per_file = min(per_file, UNKNOWN_BYTES)
            elif known[1].random_expected and known[1].signatures:
                # Compressed and media formats are random anyway: only the signature tells,
                # and it sits in the first KiB.
                per_file = min(per_file, HEAD_BYTES)
            found = content.look(Path(item.path), budget=min(per_file, budget))
            budget -= found.bytes_read
            looks[item.path] = found

    def _renames(self) -> None:
        s = self.signals
        if not self.gone:
            return
        new, pairs, looks = self._new_sizes, self._pairs, self.looks
        s.renames = len(pairs)
        targets = {path for _, path in pairs}
        rewritten = {path for path in targets
                     if path in looks and looks[path].kind == "encrypted"}
        # A rename that kept the bytes adds nothing to the repository (restic deduplicates);
        # renames that rewrote them (encrypted on the way) add about their size. restic's
        # summary has the bytes added: what the other changed files and the trees cannot
        # account for (at most their sizes) came from the renamed ones.
        big = [path for path in targets if new[path] >= MIN_COMPRESSIBLE_SIZE]
        others = sum(i.size for i in self.changed if i.path not in targets)
        spare = s.data_added - others - TREE_BYTES_PER_FILE * (len(self.changed) + len(self.gone))
        if big and spare >= sum(new[path] for path in big) / 2:
            rewritten.update(big)
        s.renames_changed = len(rewritten)

    def judge_sample(self) -> None:
        """The sampled files' looks, written into the listing (once)."""
        if self._judged:
            return
        self._judged = True
        s = self.signals
        # Changed files start unlooked: what is marked encrypted now was so before and is
        # unchanged (a slow attack's earlier victims).
        s.prior_encrypted = self.current.count(ENCRYPTED)
        previous = self.previous.entries if self.previous else {}
        looks = self.looks
        for path, found in looks.items():
            entry = self.current.entries[path]
            before = previous.get(path)
            code = _look_code(found)
            if not found.readable:
                s.unreadable += 1
            else:
                s.sampled += 1
                s.bytes_read += found.bytes_read
            if code == RANDOM and before is not None and before.look == PLAIN:
                code = ENCRYPTED  # an unknown format that was not random before, now is
                if len(s.examples) < 10:
                    s.examples.append(f"{Path(path).name}: was not random, now is")
            entry.look = code
            if code == ENCRYPTED:
                s.encrypted += 1
                if found.magic_mismatch:
                    s.magic_mismatch += 1
                else:
                    s.random += 1
                if len(s.examples) < 10:
                    s.examples.append(found.reasons[0] if found.reasons else found.path)
        for item in self.changed:
            before = previous.get(item.path)
            if item.path not in looks and before is not None and before.look in (PLAIN, RANDOM):
                # Not looked at this time: what the path was stays known, so a later random
                # version of it is still compared with a plain one.
                self.current.entries[item.path].look = before.look

    def _hits(self) -> None:
        s = self.signals
        compressible = self._compressible
        changed_bytes = sum(i.size for i in self.changed)
        if compressible and s.data_added >= REWRITTEN_SHARE * changed_bytes and (
                s.data_added_packed >= INCOMPRESSIBLE * s.data_added) and (
                sum(i.size for i in compressible) >= COMPRESSIBLE_SHARE * changed_bytes):
            # The changed bytes were nearly all new to the repository, mostly of text-like
            # formats, and did not compress: those text files are not text any more.
            s.incompressible = len(compressible)
            for item in compressible:
                self.current.entries[item.path].look = ENCRYPTED
            self.packed = None
        rest = self._unsampled - s.incompressible
        share = s.encrypted / s.sampled if s.sampled else 0.0
        # The sample stands for the files it could not reach only when it is clearly hit: a
        # few odd files in a sample of hundreds are not multiplied into a false alarm.
        s.estimated = round(share * rest) if share >= EXTRAPOLATE_SHARE and rest > 0 else 0
        s.hits = s.encrypted + s.incompressible + s.prior_encrypted + s.estimated
