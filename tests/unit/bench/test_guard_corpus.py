"""The ransomware benchmark's share and workloads, judged on real bytes: every format opens with
the library that reads it, the same seed gives the same share, each attack changes what it says
it does (and benign workloads keep every format valid)."""

from __future__ import annotations

import ast
import csv
import gzip
import hashlib
import json
import random
import shutil
import sqlite3
import zipfile
from collections import Counter
from pathlib import Path
from xml.etree import ElementTree

import pytest
from PIL import Image

from bench import guard_workloads as wl
from bench.guard_corpus import CSV_HEADERS, KINDS, Corpus, KiB, MiB, kind_of, make_corpus

FILES, TARGET = 150, 10 * MiB


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return make_corpus(tmp_path_factory.mktemp("share"), files=FILES, target_bytes=TARGET,
                       seed=11, workers=2)


@pytest.fixture
def share(corpus: Corpus, tmp_path: Path) -> Path:
    """A fresh copy of the module's share, for a workload to change."""
    return Path(shutil.copytree(corpus.root, tmp_path / "share"))


def hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def assert_valid(path: Path) -> None:
    """The file is what its extension says, read by the library that reads that format."""
    kind, data = kind_of(path), path.read_bytes()
    if kind in ("docx", "xlsx", "pptx"):
        with zipfile.ZipFile(path) as package:
            assert package.testzip() is None
            assert "[Content_Types].xml" in package.namelist()
            assert {"docx": "word/document.xml", "xlsx": "xl/workbook.xml",
                    "pptx": "ppt/presentation.xml"}[kind] in package.namelist()
            for name in package.namelist():
                if name.endswith((".xml", ".rels")):
                    ElementTree.fromstring(package.read(name))  # noqa: S314 (files we made)
    elif kind == "sqlite":
        with sqlite3.connect(path.as_uri() + "?mode=ro", uri=True) as con:
            assert con.execute("SELECT count(*) FROM bookings").fetchone()[0] > 0
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    elif kind == "gz":
        assert "Z " in gzip.decompress(data).decode()
    elif kind in ("png", "jpg"):
        with Image.open(path) as img:
            assert img.format == ("PNG" if kind == "png" else "JPEG")
            img.verify()
    elif kind == "pdf":
        assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    elif kind == "csv":
        header, *rows = list(csv.reader(data.decode().splitlines()))
        assert tuple(header) in CSV_HEADERS.values() and rows
        assert all(len(row) == len(header) for row in rows)
    elif kind == "json":
        json.loads(data)
    elif kind == "py":
        ast.parse(data)
    elif kind == "so":
        assert data.startswith(b"\x7fELF\x02\x01\x01")
    elif kind == "mp4":
        assert data[4:8] == b"ftyp" and b"mdat" in data[:64]
    elif kind == "sql":
        assert data.startswith(b"-- MySQL dump") and b"INSERT INTO `citizens` VALUES (1," in data
    else:
        assert data.decode("utf-8")


def test_small_share_has_every_real_format(corpus: Corpus) -> None:
    kinds = Counter(f.kind for f in corpus.files)
    assert set(kinds) == set(KINDS) and len(corpus.files) == FILES
    assert sorted(hashes(corpus.root)) == sorted(f.path for f in corpus.files)
    for path in corpus.paths():
        assert_valid(path)
    sizes = [f.size for f in corpus.files]
    assert TARGET * .7 < corpus.total_bytes < TARGET * 1.3
    assert sum(2 * KiB <= s <= 260 * KiB for s in sizes) > .8 * FILES
    assert any(s > MiB for s in sizes)
    assert max(f.path.count("/") for f in corpus.files) >= 3
    assert any(" " in f.path.rsplit("/", 1)[1] for f in corpus.files)
    assert (corpus.root / "IT/software").is_dir() and list(corpus.root.glob("IT/logs/*/*.log"))


def test_same_seed_same_share(tmp_path: Path) -> None:
    one = make_corpus(tmp_path / "a", files=30, target_bytes=MiB, seed=5, workers=1)
    two = make_corpus(tmp_path / "b", files=30, target_bytes=MiB, seed=5, workers=2)
    other = make_corpus(tmp_path / "c", files=30, target_bytes=MiB, seed=6, workers=1)
    assert hashes(one.root) == hashes(two.root) and one.files == two.files
    assert set(hashes(other.root).values()).isdisjoint(hashes(one.root).values())


def test_encrypt_in_place(share: Path) -> None:
    before = hashes(share)
    report = wl.encrypt_in_place(share, random.Random(1))
    after = hashes(share)
    assert sorted(report.modified) == sorted(before) == sorted(after)
    assert all(after[p] != before[p] for p in before)
    for docx in share.rglob("*.docx"):
        assert not zipfile.is_zipfile(docx)
    partial = wl.ATTACKS["encrypt_in_place_5pct"](share, random.Random(2))
    assert len(partial.modified) == round(FILES * .05)


@pytest.mark.parametrize(("name", "suffix"), [("encrypt_rename_notes", ".locked"),
                                              ("encrypt_rename_lockbit", ".lockbit")])
def test_encrypt_rename_notes(share: Path, name: str, suffix: str) -> None:
    before = hashes(share)
    report = wl.ATTACKS[name](share, random.Random(1))
    assert sorted(old for old, _ in report.renamed) == sorted(before)
    for old, new in report.renamed:
        assert not (share / old).exists() and new.endswith(suffix)
        assert hashlib.sha256((share / new).read_bytes()).hexdigest() != before[old]
        assert (share / new).parent.joinpath("README_DECRYPT.txt").is_file()
    assert len(report.notes) == len({old.rsplit("/", 1)[0] for old, _ in report.renamed})
    assert b"ENCRYPTED" in (share / report.notes[0]).read_bytes()
    assert set(report.created) == set(report.notes)


def test_intermittent_encrypts_every_third_block(share: Path) -> None:
    block = 64 * KiB
    big = max(wl.files_of(share), key=lambda p: p.stat().st_size)
    small = min(wl.files_of(share), key=lambda p: p.stat().st_size)
    old_big, old_small = big.read_bytes(), small.read_bytes()
    assert len(old_big) > 4 * block
    report = wl.intermittent(share, random.Random(1))
    assert len(report.modified) == FILES
    new_big = big.read_bytes()
    assert len(new_big) == len(old_big)
    for index in range(len(old_big) // block):
        part = slice(index * block, (index + 1) * block)
        assert (new_big[part] == old_big[part]) == (index % 3 != 0), index
    assert small.read_bytes() != old_small and len(small.read_bytes()) == len(old_small)


def test_first_mib(share: Path) -> None:
    big = max(wl.files_of(share), key=lambda p: p.stat().st_size)
    small = min(wl.files_of(share), key=lambda p: p.stat().st_size)
    old_big, old_small = big.read_bytes(), small.read_bytes()
    wl.first_mib(share, random.Random(1))
    new_big, new_small = big.read_bytes(), small.read_bytes()
    assert new_big[MiB:] == old_big[MiB:] and new_big[:MiB] != old_big[:MiB]
    assert len(new_small) == len(old_small)
    assert all(new_small[i:i + 256] != old_small[i:i + 256] for i in range(0, len(old_small), 256))


def test_slow_attack_takes_new_files_each_step(share: Path) -> None:
    done: set[str] = set()
    for step in range(3):
        report = wl.slow_attack(share, random.Random(step), share=.05)
        assert len(report.modified) == round((FILES - len(done)) * .05)
        assert done.isdisjoint(report.modified)
        done |= set(report.modified)
    assert all((share / p).read_bytes().endswith(wl.MARK) for p in done)
    assert sum((share / f"{p}").read_bytes().endswith(wl.MARK) for p in hashes(share)) == len(done)


def test_mass_delete_note(share: Path) -> None:
    report = wl.mass_delete_note(share, random.Random(1))
    assert len(report.removed) == round(FILES * .6)
    assert not any((share / p).exists() for p in report.removed)
    assert (share / "HOW_TO_RECOVER_FILES.txt").is_file() and len(report.notes) == 5
    assert len(wl.files_of(share)) == FILES - len(report.removed)


def test_daily_edits_keep_formats(corpus: Corpus, share: Path) -> None:
    before = hashes(share)
    report = wl.daily_edits(share, random.Random(3), share=.1, new_docs=3)
    assert len(report.modified) == round(FILES * .1) and len(report.created) == 3
    after = hashes(share)
    for rel in report.modified + report.created:
        assert_valid(share / rel)
        assert rel in report.created or after[rel] != before[rel]
    for rel in report.modified:
        if rel.endswith((".csv", ".log", ".txt", ".md", ".docx")):  # appended to
            assert (share / rel).stat().st_size > (corpus.root / rel).stat().st_size
    rng = random.Random(4)
    docx = next(p for p in share.rglob("*.docx"))
    with zipfile.ZipFile(docx) as old:
        paragraphs = old.read("word/document.xml").count(b"<w:p>")
    docx.write_bytes(wl.edit_docx(docx.read_bytes(), rng))
    assert_valid(docx)
    with zipfile.ZipFile(docx) as new:
        assert new.read("word/document.xml").count(b"<w:p>") > paragraphs


def test_bulk_photo_import(share: Path) -> None:
    report = wl.bulk_photo_import(share, random.Random(1), count=6)
    assert len(report.created) == 6
    for rel in report.created:
        assert_valid(share / rel)
    assert any(rel.endswith(".JPG") for rel in report.created)


def test_log_rotation(share: Path) -> None:
    logs = {p: p.read_bytes() for p in share.rglob("*.log")}
    wl.log_rotation(share, random.Random(1))
    for log, content in logs.items():
        assert gzip.decompress(log.with_name(log.name + ".1.gz").read_bytes()) == content
    written = [log for log in logs if log.stat().st_size]  # the others restarted empty
    second = wl.log_rotation(share, random.Random(2))
    assert written and all(p.with_name(p.name + ".2.gz").is_file() for p in written)
    assert len(second.renamed) >= len(written)  # and the corpus's own old .log.N.gz
    for path in share.rglob("*.gz"):
        assert_valid(path)


def test_replace_documents(share: Path) -> None:
    before = hashes(share)
    report = wl.replace_documents(share, random.Random(1))
    assert report.modified and len({rel.split("/")[0] for rel in report.modified}) == 1
    after = hashes(share)
    for rel in report.modified:
        assert before[rel] != after[rel]
        assert_valid(share / rel)


def test_software_update(share: Path) -> None:
    report = wl.software_update(share, random.Random(1), share=1.0, added=.2)
    assert report.modified and report.created
    assert all("/software/" in rel for rel in report.modified + report.created)
    for rel in report.modified + report.created:
        assert_valid(share / rel)


def test_folder_reorganisation_moves_without_changing_content(share: Path) -> None:
    before = hashes(share)
    report = wl.folder_reorganisation(share, random.Random(1))
    after = hashes(share)
    assert Counter(before.values()) == Counter(after.values())
    assert len(report.renamed) > FILES / 5
    assert all(before[old] == after[new] for old, new in report.renamed)
    assert any(" " in old.rsplit("/", 1)[1] and "-" in new.rsplit("/", 1)[1]
               for old, new in report.renamed)
    assert wl.tidy_name("report 2025.docx") == "report-2025.docx"


def test_database_dump_changes_rows(share: Path) -> None:
    dump = next(share.rglob("*.sql"))
    old = dump.read_text().splitlines()
    report = wl.database_dump(share, random.Random(1), change=.3)
    new = dump.read_text().splitlines()
    assert report.modified and len(new) == len(old)
    inserts = [(a, b) for a, b in zip(old, new, strict=True) if a.startswith("INSERT")]
    rows = [(x, y) for a, b in inserts for x, y in zip(a.split("),("), b.split("),("), strict=True)]
    assert .2 < sum(x != y for x, y in rows) / len(rows) < .4
    assert_valid(dump)


def test_registries_describe_every_workload() -> None:
    assert set(wl.ATTACKS) >= {"encrypt_in_place", "encrypt_rename_notes", "intermittent",
                               "first_mib", "slow_attack", "mass_delete_note"}
    assert set(wl.BENIGN) == {"bulk_photo_import", "log_rotation", "replace_documents",
                              "software_update", "folder_reorganisation", "database_dump"}
    assert set(wl.NORMAL) == {"daily_edits"}
    for scenario in [*wl.NORMAL.values(), *wl.ATTACKS.values(), *wl.BENIGN.values()]:
        assert scenario.description and "\n" not in scenario.description
