"""What one backup of a real directory shows the guard (#16). The guard's walk of the directory
is compared with the previous listing (size, mtime, ctime, inode, as restic compares with its
parent), a sample of the changed files is read, and a small stand-in for restic gives the
backup's summary (bytes added after deduplication, and what they took after compression); the
signals are checked against what was done to the files: rewritten with random bytes, deleted,
renamed, ransom notes dropped."""

from __future__ import annotations

import hashlib
import os
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import strategies as st

from drbackup.guard import listing, signals
from drbackup.guard.listing import ENCRYPTED, NOT_LOOKED, OK, PLAIN, RANDOM, Entry, Listing
from drbackup.guard.signals import HEAD_BYTES, Collector, SampleLimits, Signals
from drbackup.guard.verdict import History, Thresholds, assess
from drbackup.guard.walk import Excludes, Walk
from tests.support import formats as f
from tests.support.fuzz import fuzz_pair

KiB, MiB = f.KiB, f.MiB
LIMITS = SampleLimits(files=200, bytes=32 * MiB, file_bytes=256 * KiB)
LATER = 10**10  # ns: a backup that starts 10 s after the files were written (none unsettled)


@dataclass
class FakeRestic:
    """restic's summary of backups of one directory: the bytes of files not seen before as
    they are (data_added, after deduplication), and their deflate size (data_added_packed)."""

    root: Path
    blobs: set[bytes] = field(default_factory=set)

    def summary(self) -> tuple[int, int]:
        added = packed = 0
        for path in sorted(p for p in self.root.rglob("*") if p.is_file() and not
                           p.is_symlink()):
            data = path.read_bytes()
            digest = hashlib.sha256(data).digest()
            if digest not in self.blobs:
                self.blobs.add(digest)
                added += len(data)
                packed += len(zlib.compress(data, 1))
        return added, packed


@dataclass
class Guard:
    """Backups of one source with its listing saved and loaded between them, as the job does."""

    root: Path
    state: Path
    restic: FakeRestic = field(init=False)
    count: int = 0
    collector: Collector | None = None

    def __post_init__(self) -> None:
        self.restic = FakeRestic(self.root)

    @property
    def listing_file(self) -> Path:
        return self.state / "guard" / "a" / "docs.listing.gz"

    def previous(self) -> Listing | None:
        return listing.load(self.listing_file)

    def backup(self, *, limits: SampleLimits = LIMITS, ignore: tuple[str, ...] = (),
               previous: Listing | None = None, use_previous: bool = True,
               excludes: tuple[str, ...] = (), started_ns: int | None = None,
               after_walk: Callable[[], None] | None = None) -> Signals:
        self.count += 1
        before = previous if previous is not None else (self.previous() if use_previous
                                                        else None)
        collector = Collector(before, ignore=ignore)
        self.root.mkdir(parents=True, exist_ok=True)
        collector.compare(Walk([str(self.root)], Excludes.of(excludes)), started_ns=(
            time.time_ns() + LATER if started_ns is None else started_ns))
        if after_walk is not None:
            after_walk()
        collector.sample(limits, str(self.count))
        added, packed = self.restic.summary()
        signals = collector.finish(f"{self.count:08x}", data_added=added,
                                   data_added_packed=packed)
        listing.save(self.listing_file, collector.current)
        self.collector = collector
        return signals

    def current(self) -> Listing:
        assert self.collector is not None
        return self.collector.current


def _entry(path: Path, look: str = NOT_LOOKED) -> Entry:
    """The listing entry of a file as it is now (lstat), settled."""
    st = path.lstat()
    return Entry(st.st_size, look, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def guard(tmp_path: Path) -> Guard:
    return Guard(tmp_path / "src", tmp_path / "state")


def _office(tree: Path, count: int = 4) -> dict[str, Path]:
    """A small office share: letters, a spreadsheet as CSV, a docx, some source code."""
    files = {
        "letter": _write(tree / "letters" / "letter.txt", f.prose(20 * KiB)),
        "ledger": _write(tree / "finance" / "ledger.csv", f.csv_text(400)),
        "report": _write(tree / "reports" / "report.docx", f.office_zip("docx", 30 * KiB)),
        "app": _write(tree / "code" / "app.py", f.source_code(12 * KiB)),
    }
    for i in range(count):
        files[f"minutes{i}"] = _write(tree / "minutes" / f"m{i}.txt", f.prose(6 * KiB, seed=i))
    return files


def test_first_backup_has_no_parent_and_every_file_is_new(guard: Guard) -> None:
    files = _office(guard.root)
    s = guard.backup()
    assert s.parent_files is None and s.churn is None
    assert (s.files, s.new, s.modified, s.gone) == (len(files), len(files), 0, 0)
    assert s.sampled == len(files) and s.encrypted == 0 and s.hits == 0
    # Office, PDF and other compressed formats: the signature only (2 KiB), the rest whole.
    expected = sum(min(p.stat().st_size, HEAD_BYTES) if p.suffix in (".docx", ".xlsx", ".pdf",
                                                                    ".png", ".jpg", ".gz")
                   else p.stat().st_size for p in files.values())
    assert s.unreadable == 0 and s.bytes_read == expected
    saved = guard.previous()
    assert saved is not None and saved.snapshot_id == "00000001"
    assert saved.entries == {str(p): _entry(p, OK) for p in files.values()}


def test_files_rewritten_with_random_bytes_are_counted_encrypted(guard: Guard) -> None:
    files = _office(guard.root)
    guard.backup()
    letter, report = files["letter"], files["report"]
    letter_size = letter.stat().st_size
    letter.write_bytes(os.urandom(letter_size))
    report.write_bytes(os.urandom(report.stat().st_size))
    s = guard.backup()
    assert s.parent_files == len(files) and s.files == len(files)
    assert (s.new, s.modified, s.gone) == (0, 2, 0)
    assert s.churn == pytest.approx(2 / len(files))
    assert s.sampled == 2 and s.encrypted == 2
    assert s.magic_mismatch == 1 and s.random == 1  # the docx lost its zip header
    assert s.hits == 2 and s.prior_encrypted == 0 and s.estimated == 0
    assert any("report.docx: not a zip" in e for e in s.examples)
    assert any("letter.txt" in e for e in s.examples)
    now = guard.current()
    assert now.entries[str(letter)] == _entry(letter, ENCRYPTED)
    assert now.entries[str(letter)].size == letter_size
    assert now.entries[str(report)].look == ENCRYPTED
    # Unchanged files keep the entry of the previous listing, look included.
    ledger = files["ledger"]
    assert now.entries[str(ledger)] == _entry(ledger, OK)


def test_files_still_encrypted_from_an_earlier_backup_are_prior_hits(guard: Guard) -> None:
    files = _office(guard.root)
    guard.backup()
    for name in ("letter", "ledger", "app"):
        files[name].write_bytes(os.urandom(files[name].stat().st_size))
    assert guard.backup().encrypted == 3
    s = guard.backup()  # nothing changed since: a slow attack's earlier victims remain
    assert (s.new, s.modified, s.gone, s.sampled, s.encrypted) == (0, 0, 0, 0, 0)
    assert s.prior_encrypted == 3 and s.hits == 3
    # Restored from a clean copy: no longer counted.
    files["letter"].write_bytes(f.prose(20 * KiB))
    s = guard.backup()
    assert s.prior_encrypted == 2 and s.encrypted == 0 and s.hits == 2


def test_gone_files_come_from_the_previous_listing(guard: Guard) -> None:
    files = _office(guard.root, count=6)
    guard.backup()
    for i in range(3):
        files[f"minutes{i}"].unlink()
    files["app"].write_bytes(f.source_code(13 * KiB))
    _write(guard.root / "letters" / "new.txt", f.prose(5 * KiB))
    s = guard.backup()
    assert (s.parent_files, s.files, s.new, s.modified, s.gone) == (10, 8, 1, 1, 3)
    assert s.churn == pytest.approx(4 / 10)
    assert set(guard.current().entries) == {str(p) for p in guard.root.rglob("*") if
                                             p.is_file()}


def test_without_a_previous_listing_nothing_is_gone_and_every_file_is_new(
        guard: Guard) -> None:
    files = _office(guard.root)
    guard.backup()
    files["letter"].unlink()
    # The listing was lost (damaged): nothing to compare with.
    s = guard.backup(use_previous=False)
    assert s.parent_files is None and s.gone == 0 and s.churn is None
    assert s.files == len(files) - 1 and s.new == len(files) - 1 and s.modified == 0
    assert guard.current().entries[str(files["ledger"])] == _entry(files["ledger"], OK)


def test_ignored_paths_count_for_nothing(guard: Guard) -> None:
    files = _office(guard.root)
    photos = guard.root / "photos"
    for i in range(6):
        _write(photos / f"IMG_{i}.txt", os.urandom(8 * KiB))  # random, "text": would be hits
        _write(photos / f"sub{i}" / "README_DECRYPT.txt", b"pay us\n" * 50)
        _write(photos / f"archive{i}.locked", os.urandom(5 * KiB))
    ignore = (f"{photos}/*",)
    s = guard.backup(ignore=ignore)
    assert s.ignored == 18 and s.files == len(files)
    assert (s.encrypted, s.notes, s.note_dirs, s.ransom_extensions, s.hits) == (0, 0, 0, 0, 0)
    assert not any(p.startswith(str(photos)) for p in guard.current().entries)
    # A folder ignored after it was listed: its files are not "gone" either.
    guard.backup()  # without the ignore list: listed
    for p in photos.rglob("*.txt"):
        p.unlink()
    s = guard.backup(ignore=ignore)
    assert s.gone == 0 and s.ignored == 6


@pytest.mark.parametrize(("limits", "sampled"), [
    (SampleLimits(files=5, bytes=32 * MiB, file_bytes=256 * KiB), 5),
    (SampleLimits(files=0, bytes=32 * MiB, file_bytes=256 * KiB), 0),
    (SampleLimits(files=200, bytes=50 * KiB, file_bytes=16 * KiB), 4),  # 16+16+16+2 KiB
    (SampleLimits(files=200, bytes=0, file_bytes=16 * KiB), 0),
    (SampleLimits(files=200, bytes=32 * MiB, file_bytes=4 * KiB), 30),
])
def test_the_sample_keeps_to_its_file_and_byte_budgets(
        guard: Guard, limits: SampleLimits, sampled: int) -> None:
    guard.backup()  # an empty first backup: the rest are new
    for i in range(30):
        _write(guard.root / f"d{i % 3}" / f"f{i}.csv", f.csv_text(500, seed=i))
    s = guard.backup(limits=limits)
    assert s.new == 30 and s.sampled == sampled and s.unreadable == 0
    assert s.bytes_read <= limits.bytes
    assert s.bytes_read <= sampled * limits.file_bytes
    # A file cut short by the byte budget is read too little to say: not looked.
    assert guard.current().count(OK) <= sampled
    assert guard.current().count(OK) + guard.current().count(NOT_LOOKED) == 30


def test_modified_files_are_sampled_before_new_ones(guard: Guard) -> None:
    for i in range(10):
        _write(guard.root / f"old{i}.txt", f.prose(8 * KiB, seed=i))
    guard.backup()
    for i in range(10):
        _write(guard.root / f"new{i}.txt", f.prose(8 * KiB, seed=100 + i))
    for i in range(3):
        _write(guard.root / f"old{i}.txt", os.urandom(8 * KiB))
    s = guard.backup(limits=SampleLimits(files=3, bytes=32 * MiB, file_bytes=256 * KiB))
    assert (s.modified, s.new, s.sampled, s.encrypted) == (3, 10, 3, 3)


def test_vanished_links_and_fifos_are_unreadable_not_raised(guard: Guard) -> None:
    files = _office(guard.root)
    guard.backup()
    files["letter"].write_bytes(f.prose(21 * KiB))
    files["ledger"].write_bytes(f.csv_text(401))
    files["report"].write_bytes(f.office_zip("docx", 31 * KiB))

    def swap() -> None:
        # After the walk saw them: one deleted, one swapped for a link to a random file, one
        # for a fifo.
        files["letter"].unlink()
        secret = _write(guard.root.parent / "elsewhere" / "secret.txt", os.urandom(8 * KiB))
        files["ledger"].unlink()
        files["ledger"].symlink_to(secret)
        files["report"].unlink()
        os.mkfifo(files["report"])

    s = guard.backup(after_walk=swap)
    # None of the three is read: the deleted one is gone, the link and the fifo are not
    # followed or opened (O_NOFOLLOW, regular files only).
    assert s.modified == 3 and s.unreadable == 3 and s.sampled == 0
    assert s.encrypted == 0 and s.bytes_read == 0 and s.hits == 0


def test_ransom_notes_count_by_directory_and_broad_notes_apart(guard: Guard) -> None:
    _office(guard.root)
    guard.backup()
    for folder in ("letters", "finance", "reports"):
        _write(guard.root / folder / "README_DECRYPT.txt", b"Your files are encrypted.\n")
    _write(guard.root / "finance" / "HOW_TO_DECRYPT.html", b"<p>pay</p>")
    _write(guard.root / "code" / "project_readme.txt", b"How to build.\n")
    _write(guard.root / "code" / "tools_readme.txt", b"How to run.\n")
    s = guard.backup()
    assert s.notes == 4 and s.note_dirs == 3
    assert s.note_names == ["HOW_TO_DECRYPT.html", "README_DECRYPT.txt"]
    assert s.broad_notes == 2


def test_new_files_with_a_ransomware_extension_are_counted(guard: Guard) -> None:
    _office(guard.root)
    guard.backup()
    for i in range(5):
        _write(guard.root / "letters" / f"l{i}.txt.locked", os.urandom(5 * KiB))
    _write(guard.root / "letters" / "x.LOCKBIT", os.urandom(5 * KiB))
    _write(guard.root / "letters" / "vault.enc", os.urandom(5 * KiB))  # broad: not counted
    _write(guard.root / "letters" / "report.locked.pdf", f.pdf())  # a PDF
    s = guard.backup()
    assert s.ransom_extensions == 6
    assert s.extension_names == [".lockbit", ".locked"]


def test_a_file_with_such_an_extension_that_only_changes_is_not_a_new_one(
        guard: Guard) -> None:
    # A legitimate wallet or vault file, rewritten by its program at every backup.
    wallets = [_write(guard.root / f"w{i}" / "keys.wallet", os.urandom(2 * KiB))
               for i in range(6)]
    first = guard.backup()
    assert first.ransom_extensions == 6  # new in the first backup
    for wallet in wallets:
        wallet.write_bytes(os.urandom(2 * KiB))
    s = guard.backup()
    assert s.modified == 6 and s.ransom_extensions == 0 and s.extension_names == []


def test_a_rename_that_kept_the_bytes_is_not_a_changed_rename(guard: Guard) -> None:
    files = _office(guard.root)
    guard.backup()
    report = files["report"]
    report.rename(report.with_name("report.docx.bak"))
    letter = files["letter"]
    letter.rename(letter.with_name("letter.md"))
    s = guard.backup()
    assert (s.new, s.gone) == (2, 2)
    assert s.renames == 2 and s.renames_changed == 0


def test_a_rename_that_rewrote_the_bytes_is_a_changed_rename(guard: Guard) -> None:
    files = _office(guard.root, count=6)
    guard.backup()
    renamed = ["letter", "report", "minutes0", "minutes1"]
    for name in renamed:
        path = files[name]
        data = path.read_bytes()
        path.unlink()
        # Encrypted on the way, with a 512-byte key appended.
        _write(path.with_name(path.name + ".locked"), os.urandom(len(data) + 512))
    s = guard.backup()
    assert s.renames == 4 and s.renames_changed == 4
    assert s.ransom_extensions == 4 and s.gone == 4 and s.new == 4


def test_empty_marker_files_renamed_are_not_changed_renames(guard: Guard) -> None:
    # A spool directory: each job's empty marker goes from .pending to .done.
    spool = guard.root / "spool"
    for i in range(8):
        _write(spool / f"job{i}.pending", b"")
    _write(spool / "one-byte.pending", b"x")
    guard.backup()
    for marker in list(spool.iterdir()):
        marker.rename(marker.with_suffix(".done"))
    s = guard.backup()
    assert s.renames == 9 and s.renames_changed == 0


def test_an_unknown_format_that_was_plain_and_is_random_now_is_encrypted(
        guard: Guard) -> None:
    data = _write(guard.root / "data" / "records.bin", f.csv_text(400))
    blob = _write(guard.root / "data" / "blob.bin", os.urandom(20 * KiB))
    guard.backup()
    # The first backup saw one plain and one random file of an unknown format.
    looks = {Path(p).name: e.look for p, e in guard.current().entries.items()}
    assert looks == {"records.bin": PLAIN, "blob.bin": RANDOM}
    data.write_bytes(os.urandom(data.stat().st_size))
    blob.write_bytes(os.urandom(20 * KiB))  # random before: may be legitimately so
    s = guard.backup()
    # blob.bin was random before: not read again (nothing to learn), and stays RANDOM.
    assert s.sampled == 1 and s.encrypted == 1 and s.random == 1 and s.magic_mismatch == 0
    assert "records.bin: was not random, now is" in s.examples
    assert guard.current().entries[str(data)].look == ENCRYPTED
    assert guard.current().entries[str(blob)].look == RANDOM


def test_a_plain_look_in_the_previous_listing_turns_random_into_encrypted(
        guard: Guard) -> None:
    path = _write(guard.root / "db" / "table.dat", os.urandom(16 * KiB))
    # Listed without its lstat (inode 0: unsettled): compared as modified.
    previous = Listing("old", {str(path): Entry(16 * KiB, PLAIN)})
    s = guard.backup(previous=previous)
    assert s.encrypted == 1 and s.random == 1 and s.hits == 1


def test_unsampled_text_files_whose_new_bytes_did_not_compress_are_incompressible(
        guard: Guard) -> None:
    texts = [_write(guard.root / f"t{i}.txt", f.prose(8 * KiB, seed=i)) for i in range(3)]
    small = _write(guard.root / "small.txt", f.prose(2 * KiB))
    archive = _write(guard.root / "a.zip", f.random_zip(8 * KiB))
    guard.backup()
    for text in texts:
        text.write_bytes(os.urandom(8 * KiB))  # stored ~ size
    small.write_bytes(os.urandom(2 * KiB))  # too small to say
    archive.write_bytes(os.urandom(archive.stat().st_size))  # a zip is random anyway
    s = guard.backup(limits=SampleLimits(files=0, bytes=32 * MiB, file_bytes=256 * KiB))
    assert s.modified == 5 and s.sampled == 0
    assert s.stored_ratio is not None and s.stored_ratio >= 0.95
    assert s.incompressible == 3 and s.hits == 3 and s.estimated == 0
    looks = guard.current().entries
    assert all(looks[str(t)].look == ENCRYPTED for t in texts)
    assert looks[str(small)].look == looks[str(archive)].look == NOT_LOOKED


def test_text_files_that_compress_are_not_incompressible(guard: Guard) -> None:
    texts = [_write(guard.root / f"t{i}.txt", f.prose(8 * KiB, seed=i)) for i in range(3)]
    archive = _write(guard.root / "a.zip", f.random_zip(8 * KiB))
    guard.backup()
    texts[0].write_bytes(os.urandom(8 * KiB))  # one random among plain edits
    for i, text in enumerate(texts[1:]):
        text.write_bytes(f.prose(8 * KiB, seed=99 + i))
    archive.write_bytes(os.urandom(archive.stat().st_size))
    s = guard.backup(limits=SampleLimits(files=0, bytes=32 * MiB, file_bytes=256 * KiB))
    # restic's summary is one ratio for the whole backup: it does not single the file out.
    assert s.modified == 4 and s.incompressible == 0 and s.hits == 0


def test_a_clearly_hit_sample_stands_for_the_files_it_did_not_reach(guard: Guard) -> None:
    docs = [_write(guard.root / f"doc{i}.docx", f.office_zip("docx", 6 * KiB))
            for i in range(20)]
    guard.backup()
    for doc in docs:
        doc.write_bytes(os.urandom(doc.stat().st_size))
    s = guard.backup(limits=SampleLimits(files=4, bytes=32 * MiB, file_bytes=256 * KiB))
    assert s.sampled == 4 and s.encrypted == 4 and s.magic_mismatch == 4
    assert s.incompressible == 0  # random is expected of a docx's bytes
    assert s.estimated == 16 and s.hits == 20


def test_a_few_odd_files_in_a_large_sample_are_not_multiplied(guard: Guard) -> None:
    texts = [_write(guard.root / f"n{i}.txt", f.prose(5 * KiB, seed=i)) for i in range(30)]
    docs = [_write(guard.root / f"d{i}.docx", f.office_zip("docx", 6 * KiB)) for i in range(10)]
    guard.backup()
    for i, text in enumerate(texts):
        text.write_bytes(f.prose(5 * KiB, seed=1000 + i))
    for doc in docs:
        doc.write_bytes(f.office_zip("docx", 7 * KiB))
    texts[0].write_bytes(os.urandom(5 * KiB))
    s = guard.backup(limits=SampleLimits(files=20, bytes=32 * MiB, file_bytes=256 * KiB))
    assert s.sampled == 20 and s.modified == 40
    # The odd file is sampled (encrypted) or not, depending on where the sample falls; never
    # extrapolated, and the plain edits keep the backup's bytes compressible.
    assert s.encrypted <= 1 and s.incompressible == 0 and s.estimated == 0
    assert s.hits == s.encrypted


# Property: a workload that only edits text (no random bytes, no notes, no ransomware names)
# never produces an encryption hit nor a suspect verdict, whatever it edits, adds or deletes.
_edits = st.lists(st.tuples(st.integers(0, 11), st.sampled_from(["edit", "delete", "add"]),
                            st.integers(0, 2**16)), max_size=12)


def _clean_edits(edits: list[tuple[int, str, int]]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        guard = Guard(Path(tmp) / "src", Path(tmp) / "state")
        names = ["a.txt", "b.csv", "c.py", "d.md", "e.json", "f.docx", "g.bin", "h.log",
                 "sub/i.txt", "sub/j.csv", "sub/k.sql", "sub/l.xlsx"]
        for i, name in enumerate(names):
            _write(guard.root / name, _clean_bytes(name, i))
        guard.backup()
        for index, action, seed in edits:
            path = guard.root / names[index]
            if action == "delete":
                path.unlink(missing_ok=True)
            elif action == "add":
                _write(path.with_name(f"new{seed}{path.suffix}"), _clean_bytes(path.name, seed))
            else:
                _write(path, _clean_bytes(path.name, seed))
        s = guard.backup()
        assert s.hits == 0 and s.encrypted == 0 and s.incompressible == 0
        assert s.notes == 0 and s.ransom_extensions == 0 and s.renames_changed == 0
        # Judged after a calm learning period (baseline churn 0): still clean.
        assert not assess(s, Thresholds(), History([0.0] * 10, 10)).suspect


def _clean_bytes(name: str, seed: int) -> bytes:
    if name.endswith(".docx"):
        return f.office_zip("docx", 4 * KiB)
    if name.endswith(".xlsx"):
        return f.office_zip("xlsx", 4 * KiB)
    if name.endswith(".csv"):
        return f.csv_text(50 + seed % 200, seed=seed)
    if name.endswith(".py"):
        return f.source_code(1000 + seed % 9000)
    return f.prose(500 + seed % 12000, seed=seed)


test_clean_edits_never_hit, test_clean_edits_never_hit_long = fuzz_pair(
    _clean_edits, _edits, examples=25)


def test_unchanged_files_keep_their_entry_and_each_stat_field_makes_a_change(
        guard: Guard) -> None:
    kept = _write(guard.root / "a" / "kept.txt", f.prose(6 * KiB))
    lost = _write(guard.root / "a" / "lost.txt", f.prose(6 * KiB, seed=2))
    touched = _write(guard.root / "b" / "touched.csv", f.csv_text(100))
    chmodded = _write(guard.root / "b" / "chmodded.csv", f.csv_text(100, seed=3))
    replaced = _write(guard.root / "b" / "replaced.py", f.source_code(4 * KiB))
    guard.backup()
    before = guard.current().entries[str(kept)]
    lost.unlink()
    stamp = touched.stat()
    os.utime(touched, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1))  # mtime only
    chmodded.chmod(0o600)  # ctime only: same bytes, same mtime
    data = replaced.read_bytes()
    replaced.unlink()
    _write(replaced, data)  # a new inode (and ctime), same bytes and size
    s = guard.backup()
    assert (s.files, s.modified, s.new, s.gone, s.parent_files) == (4, 3, 0, 1, 5)
    assert guard.current().entries[str(kept)] is before or \
        guard.current().entries[str(kept)] == before
    assert str(lost) not in guard.current().entries


def test_a_file_changed_while_restic_ran_is_compared_again_next_time(
        guard: Guard, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signals, "UNSETTLED_SLACK_NS", 0)
    early = _write(guard.root / "early.txt", f.prose(6 * KiB))
    guard.backup()
    time.sleep(0.05)  # past the file system clock's tick
    started = time.time_ns()
    # With the slack at 0, past the tick again: a file's ctime comes from the kernel's coarse
    # clock, which may still show a time before `started` right after it.
    time.sleep(0.05)
    late = _write(guard.root / "late.txt", f.prose(6 * KiB, seed=5))  # after restic began
    s = guard.backup(started_ns=started)
    assert (s.new, s.modified) == (1, 0)
    assert guard.current().entries[str(late)].ino == 0  # unsettled
    assert guard.current().entries[str(early)].ino == early.stat().st_ino
    # Not touched since, but restic may have stored an older version: modified once more,
    # then settled.
    s = guard.backup()
    assert (s.new, s.modified) == (0, 1)
    s = guard.backup()
    assert (s.new, s.modified) == (0, 0)


def test_excluded_files_are_not_listed_and_not_gone_once_excluded(guard: Guard) -> None:
    files = _office(guard.root)
    cache = [_write(guard.root / "app" / ".cache" / f"c{i}.bin", os.urandom(KiB))
             for i in range(4)]
    tmp = _write(guard.root / "letters" / "draft.tmp", f.prose(2 * KiB))
    full = guard.backup()
    assert full.files == len(files) + len(cache) + 1
    s = guard.backup(excludes=(".cache", "*.tmp"))
    assert s.files == len(files) and s.gone == 0 and s.modified == 0
    assert str(tmp) not in guard.current().entries


def test_files_of_a_directory_that_cannot_be_listed_are_asked_one_by_one(
        guard: Guard, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _office(guard.root)
    guard.backup()
    minutes = str(guard.root / "minutes")
    files["minutes0"].unlink()
    real = os.open

    def refusing_open(path: str, flags: int, *args: object, **kwargs: object) -> int:
        if str(path) == minutes:
            raise PermissionError(13, "Permission denied", path)
        return real(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refusing_open)
    s = guard.backup()
    # The three left are there (lstat) and unchanged; the deleted one is gone.
    assert (s.files, s.modified, s.new, s.gone) == (len(files) - 1, 0, 0, 1)


@pytest.mark.parametrize("texts_random", [False, True])
def test_the_listing_packed_beside_restic_is_the_one_saved_after_the_verdict(
        guard: Guard, texts_random: bool) -> None:
    texts = [_write(guard.root / f"t{i}.txt", f.prose(64 * KiB, seed=i)) for i in range(6)]
    blob = _write(guard.root / "data" / "records.bin", f.csv_text(300))
    guard.backup()
    for i, text in enumerate(texts):
        text.write_bytes(os.urandom(64 * KiB) if texts_random else f.prose(64 * KiB, seed=50 + i))
    blob.write_bytes(f.csv_text(310))  # unsampled below: keeps its PLAIN look
    collector = Collector(guard.previous())
    limits = SampleLimits(files=0, bytes=32 * MiB, file_bytes=256 * KiB)
    collector.prepare(Walk([str(guard.root)]), limits, started_ns=time.time_ns() + LATER)
    assert collector.packed is not None
    added, packed = guard.restic.summary()
    s = collector.finish("f" * 64, data_added=added, data_added_packed=packed)
    # Files marked by restic's summary after the packing: packed again at the save.
    assert (collector.packed is None) == texts_random == (s.incompressible == len(texts))
    listing.save(guard.listing_file, collector.current, packed=collector.packed)
    saved = guard.previous()
    assert saved is not None and saved.snapshot_id == "f" * 64
    assert saved.entries == collector.current.entries
    assert saved.entries[str(blob)].look == PLAIN
