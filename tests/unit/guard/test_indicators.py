"""Indicators of the ransomware guard (#16): ransom-note names and ransomware extensions from
the shipped data file, extended by the operator's names, and mass renames."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from drbackup.guard.indicators import (
    mass_renames,
    ransom_extension,
    ransom_note,
    shipped,
    which_note,
)


def test_the_shipped_file_documents_every_entry() -> None:
    raw = json.loads(resources.files("drbackup.guard").joinpath("indicators.json").read_text())
    assert raw["comment"]
    assert all(entry["comment"] for entry in raw["ransom_notes"] + raw["extensions"])
    lists = shipped()
    assert len(lists.note_globs) >= 20 and len(lists.extensions) >= 30


@pytest.mark.parametrize("name", [
    "README_DECRYPT.txt", "readme_decrypt_files.html", "HOW_TO_RECOVER_FILES.txt",
    "how_to_recover.hta", "_readme.txt", "akira_readme.txt", "DECRYPT_INSTRUCTIONS.html",
    "!!!READ_ME!!!.txt", "!!!read_me!!!_now.rtf", "RESTORE_FILES_abc123.txt",
    "Restore-My-Files.txt", "@Please_Read_Me@.txt", "# DECRYPT MY FILES #.html",
    "RyukReadMe.html", "HELP_DECRYPT.png", "KRAB-DECRYPT.txt",
    "/srv/share/finance/2024/README_DECRYPT.txt",
])
def test_known_ransom_notes(name: str) -> None:
    assert ransom_note(name), name


@pytest.mark.parametrize("name", [
    "README.md", "readme.txt", "report.docx", "decrypt.py", "restore.sh", "HOWTO.txt",
    "RESTORE_FILES.csv", "notes_readme.md", "/srv/README_DECRYPT/report.docx",
])
def test_ordinary_names_are_not_ransom_notes(name: str) -> None:
    assert not ransom_note(name), (name, which_note(name))


def test_which_note_names_the_glob_and_extras_extend_the_list() -> None:
    assert which_note("Readme_Decrypt.TXT") == "README_DECRYPT*"
    assert not ransom_note("PAY_US_NOW.txt")
    assert ransom_note("pay_us_now.txt", extra=["PAY_US_*.txt"])
    assert which_note("[HELP] files.txt", extra=["[HELP]*"]) == "[HELP]*"  # no char class
    assert not ransom_note("H files.txt", extra=["[HELP]*"])
    assert not ransom_note("anything.txt", extra=["*", "", "?*"])  # match-all extras ignored


@pytest.mark.parametrize(("name", "found"), [
    ("report.docx.locked", ".locked"), ("REPORT.DOCX.LOCKED", ".locked"),
    ("ledger.csv.lockbit", ".lockbit"), ("a.conti", ".conti"), ("b.RYK", ".ryk"),
    ("photo.jpg.WNCRY", ".wncry"), ("x.cerber3", ".cerber3"), ("y.zepto", ".zepto"),
    ("z.encrypted", ".encrypted"), ("secret.enc", ".enc"), ("dir/file.crypted", ".crypted"),
    ("report.pdf", None), ("report.locked.pdf", None), (".locked", None), ("locked", None),
    ("archive.tar.gz", None), ("trailing.", None),
])
def test_ransomware_extensions(name: str, found: str | None) -> None:
    assert ransom_extension(name) == found


def test_extra_extensions_with_or_without_the_dot() -> None:
    assert ransom_extension("a.docx.mimic") is None
    assert ransom_extension("a.docx.mimic", extra=[".MIMIC"]) == ".mimic"
    assert ransom_extension("a.docx.mimic", extra=["mimic"]) == ".mimic"


def test_mass_renames_pair_added_and_replaced_extensions_of_the_same_size() -> None:
    gone = {"/s/a/report.docx": 1000, "/s/a/ledger.csv": 2000, "/s/b/photo.jpg": 3000,
            "/s/b/Makefile": 40, "/s/b/.bashrc": 50, "/s/c/keep.txt": 60}
    new = {"/s/a/report.docx.locked": 1000, "/s/a/ledger.enc": 2000,
           "/s/b/photo.jpg.id-9a.[x@y.com].wallet": 3000, "/s/b/Makefile.crypt": 40,
           "/s/b/.bashrc.crypt": 50, "/s/c/keep.txt.bak": 61, "/s/c/other.txt": 60}
    assert mass_renames(gone, new) == [
        ("/s/a/ledger.csv", "/s/a/ledger.enc"),
        ("/s/a/report.docx", "/s/a/report.docx.locked"),
        ("/s/b/.bashrc", "/s/b/.bashrc.crypt"),
        ("/s/b/Makefile", "/s/b/Makefile.crypt"),
        ("/s/b/photo.jpg", "/s/b/photo.jpg.id-9a.[x@y.com].wallet"),
    ]
    assert ("/s/c/keep.txt", "/s/c/keep.txt.bak") in mass_renames(gone, new, grow=512)


def test_mass_renames_leave_moves_resizes_and_case_changes_alone() -> None:
    gone = {"/s/a/report.docx": 1000, "/s/a/photo.JPG": 500, "/s/a/data.csv": 700}
    new = {"/s/archive/report.docx.locked": 1000,  # another directory: a move
           "/s/a/photo.jpg": 500,                  # case-only extension change
           "/s/a/data.csv.locked": 9999}           # not the same size
    assert mass_renames(gone, new) == []
    assert mass_renames({}, new) == [] and mass_renames(gone, {}) == []


def test_each_path_is_in_at_most_one_pair_and_added_extensions_win() -> None:
    gone = {"/s/report.docx": 10, "/s/report.xlsx": 10}
    new = {"/s/report.docx.locked": 10, "/s/report.locked": 10}
    pairs = mass_renames(gone, new)
    assert pairs == [("/s/report.docx", "/s/report.docx.locked"),
                     ("/s/report.xlsx", "/s/report.locked")]
    olds, news = zip(*pairs, strict=True)
    assert len(set(olds)) == len(olds) and len(set(news)) == len(news)
