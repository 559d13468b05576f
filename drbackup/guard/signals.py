"""What one backup of a directory source shows, for the verdict: restic's per-file lines
compared with the previous listing, and a bounded sample of the changed files read back.

`Collector.add` is restic's item callback (engine.ItemCallback): it builds the new listing as
restic goes and keeps the changed files. `Collector.signals` then reads a sample of those
files (at most `sample_files` files and `sample_bytes` bytes, `file_bytes` per file) with
content.look, which opens without following links and never raises: an unreadable or
vanished file is counted, not fatal.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from drbackup.guard import content, indicators
from drbackup.guard.listing import ENCRYPTED, NOT_LOOKED, OK, PLAIN, RANDOM, Entry, Listing

# A changed file of a format that compresses (text, CSV, source) whose stored bytes are at
# least this share of its size did not compress: restic stores random data as it is.
INCOMPRESSIBLE = 0.95
MIN_COMPRESSIBLE_SIZE = 4096
EXTRAPOLATE_SHARE = 0.25
HEAD_BYTES = 2048  # below content.MIN_WINDOW: the signature is read, no randomness test
UNKNOWN_BYTES = 16 * 1024  # two windows: head and tail
# Ordinary files also match these; they count only with other signs.
BROAD_EXTENSIONS = frozenset({".enc"})
BROAD_NOTES = frozenset({"*_readme.txt"})


@dataclass(frozen=True)
class SampleLimits:
    files: int
    bytes: int
    file_bytes: int


@dataclass(frozen=True)
class Item:
    """A file restic saved or found unchanged (engine.BackupItem, without the engine):
    `added` the bytes of its chunks new to the repository, `stored` what they took there."""

    action: str
    path: str
    added: int
    stored: int


@dataclass(frozen=True)
class Changed:
    """A new or modified file: its size (lstat right after restic read it) and restic's
    figures."""

    path: str
    size: int
    added: int
    stored: int


def _size(path: str, fallback: int) -> int:
    try:
        return os.lstat(path).st_size
    except (OSError, ValueError):
        return fallback


_UNLISTED: dict[str, bool] = {}


def _entries(directory: str) -> dict[str, bool] | None:
    """The names in a directory, True for those that are not directories; None when it
    cannot be listed (gone: then every file of it is gone; or unreadable: asked per file)."""
    try:
        with os.scandir(directory) as found:
            return {e.name: not e.is_dir(follow_symlinks=False) for e in found}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return None


def _present(path: str) -> bool:
    """The path exists and is not a directory (lstat, never following a link)."""
    try:
        return not stat.S_ISDIR(os.lstat(path).st_mode)
    except (OSError, ValueError):
        return False


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
    """Collects restic's items of one backup against the previous listing."""

    def __init__(self, previous: Listing | None, *, ignore: Sequence[str] = ()):
        self.previous = previous
        self.ignore = tuple(ignore)
        self.current = Listing(None)
        self.changed: list[Changed] = []
        # Files ignored now do not count, though the previous listing may hold them.
        self.signals = Signals(parent_files=sum(
            1 for path in previous.entries if not _ignored(path, self.ignore))
            if previous else None)

    def add(self, item: Item) -> None:
        self.add_fields(item.action, item.path, item.added, item.stored)

    def add_fields(self, action: str, path: str, added: int, stored: int) -> None:
        """One of restic's items (once per file of the source: kept lean)."""
        if self.ignore and _ignored(path, self.ignore):
            self.signals.ignored += 1
            return
        before = self.previous.entries.get(path) if self.previous else None
        if action == "unchanged":
            # restic sends no size for an unchanged file: the listing has it. The entry is
            # shared with the previous listing; only changed files get looks written.
            self.current.entries[path] = before if before is not None else Entry(
                _size(path, 0))
            return
        size = _size(path, added)
        self.current.entries[path] = Entry(size)
        self.changed.append(Changed(path, size, added, stored))

    def finish(self, snapshot_id: str | None, *, data_added: int, data_added_packed: int,
               limits: SampleLimits, extra_notes: Sequence[str] = (),
               extra_extensions: Sequence[str] = ()) -> Signals:
        """Compare, sample, count. Reads at most limits.bytes of the source."""
        s = self.signals
        self.current.snapshot_id = snapshot_id
        previous = self.previous.entries if self.previous else {}
        gone = self._carry_unchanged(previous)
        s.files = len(self.current.entries)
        s.data_added, s.data_added_packed = data_added, data_added_packed
        s.gone = len(gone)
        s.new = sum(1 for i in self.changed if i.path not in previous)
        s.modified = len(self.changed) - s.new
        # Changed files start unlooked: what is marked encrypted now was so before and is
        # unchanged (a slow attack's earlier victims).
        s.prior_encrypted = self.current.count(ENCRYPTED)
        self._names(extra_notes, extra_extensions)
        looks = self._sample(limits, snapshot_id or "")
        self._renames(gone, looks)
        self._hits(looks)
        return s

    def _carry_unchanged(self, previous: dict[str, Entry]) -> dict[str, int]:
        """Files of the previous listing restic did not name: unchanged ones (their lines are
        not read when there is a listing: see `wants_unchanged`) are carried over; those no
        longer there (lstat) are gone. Returns the gone ones with their sizes."""
        gone: dict[str, int] = {}
        current = self.current.entries
        # One scandir per directory instead of one lstat per file (20,000 files: ~200
        # directory reads); the d_type of the entry says "directory" as lstat would.
        listed: dict[str, dict[str, bool] | None] = {}
        for path, entry in previous.items():
            if path in current or (self.ignore and _ignored(path, self.ignore)):
                continue
            parent, name = posixpath.split(path)
            names = listed.get(parent, _UNLISTED)
            if names is _UNLISTED:
                names = listed[parent] = _entries(parent)
            # A directory that cannot be listed: the file itself is asked.
            present = _present(path) if names is None else names.get(name)
            if not present:
                gone[path] = entry.size
            else:
                current[path] = entry
        return gone

    @property
    def wants_unchanged(self) -> bool:
        """Without a previous listing, restic's lines of unchanged files are the only record
        of them; with one, they add nothing and cost a Python line each."""
        return self.previous is None

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

    def _sample(self, limits: SampleLimits, salt: str) -> dict[str, content.ContentLook]:
        """Modified files first (an attack rewrites what exists), then new ones, each in a
        reproducible pseudo-random order; within the file and byte budgets."""
        previous = self.previous.entries if self.previous else {}
        candidates = sorted(
            (i for i in self.changed if i.size > 0),
            key=lambda i: (i.path not in previous, _order(i.path, salt)))
        looks: dict[str, content.ContentLook] = {}
        budget = limits.bytes
        for item in candidates:
            if len(looks) >= limits.files or budget <= 0:
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
        return looks

    def _renames(self, gone: dict[str, int], looks: dict[str, content.ContentLook]) -> None:
        s = self.signals
        if not gone:
            return
        new = {i.path: i.size for i in self.changed if i.path not in (
            self.previous.entries if self.previous else {})}
        stored = {i.path: i.stored for i in self.changed}
        pairs = indicators.mass_renames(gone, new, grow=4096)
        s.renames = len(pairs)
        # A rename that kept the bytes adds nothing to the repository (restic deduplicates);
        # one that rewrote them (encrypted on the way) adds about its size.
        s.renames_changed = sum(
            1 for _, path in pairs
            if (stored.get(path, 0) > 0 and stored[path] >= new[path] // 2) or (
                path in looks and looks[path].kind == "encrypted"))

    def _hits(self, looks: dict[str, content.ContentLook]) -> None:
        s = self.signals
        previous = self.previous.entries if self.previous else {}
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
        unsampled = [i for i in self.changed if i.path not in looks and i.size > 0]
        for item in unsampled:
            before = previous.get(item.path)
            if before is not None and before.look in (PLAIN, RANDOM):
                # Not looked at this time: what the path was stays known, so a later random
                # version of it is still compared with a plain one.
                self.current.entries[item.path].look = before.look
            known = content.format_for(posixpath.basename(item.path))
            if known and not known[1].random_expected and item.added >= MIN_COMPRESSIBLE_SIZE \
                    and item.stored >= INCOMPRESSIBLE * item.added:
                s.incompressible += 1
                self.current.entries[item.path].look = ENCRYPTED
        rest = len(unsampled) - s.incompressible
        share = s.encrypted / s.sampled if s.sampled else 0.0
        # The sample stands for the files it could not reach only when it is clearly hit: a
        # few odd files in a sample of hundreds are not multiplied into a false alarm.
        s.estimated = round(share * rest) if share >= EXTRAPOLATE_SHARE and rest > 0 else 0
        s.hits = s.encrypted + s.incompressible + s.prior_encrypted + s.estimated
