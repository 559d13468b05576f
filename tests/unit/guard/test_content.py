"""The content signal of the ransomware guard (#16) on real files: office zips, PDF, PNG, JPEG,
SQLite, gzip, CSV, text and source code, then the same files encrypted whole, in their first
MiB only, and every n-th block. Every attack is "encrypted" with a reason naming the signal;
every benign file, however random its body, is "ok"; links, fifos and vanished files are not
read and never raise; the read never exceeds the budget."""

from __future__ import annotations

import itertools
import json
import os
import socket
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

import pytest

from drbackup.guard import content
from drbackup.guard.content import (
    CHI_SQUARE_THRESHOLD,
    DEFAULT_BUDGET,
    WINDOW,
    chi_square,
    format_for,
    formats,
    look,
    plan,
)
from tests.support import formats as f

KiB, MiB = f.KiB, f.MiB


def _benign(tmp: Path) -> dict[str, bytes]:
    big_csv = f.csv_text(60000)
    return {
        "report.docx": f.office_zip("docx"),
        "budget.xlsx": f.office_zip("xlsx"),
        "random.zip": f.random_zip(),
        "minutes.pdf": f.pdf(),
        "scan.pdf": f.pdf(f.noise(300 * KiB)),
        "photo.png": f.png(),
        "photo.jpg": f.jpeg(),
        "IMG_0001.JPEG": f.jpeg(40 * KiB),
        "permits.sqlite": f.sqlite_db(tmp / "scratch.sqlite"),
        "access.log.gz": f.gzip_of(f.prose(400 * KiB)),
        "noise.gz": f.gzip_of(f.noise(300 * KiB)),
        "ledger.csv": big_csv,
        "small.csv": f.csv_text(30),
        "letter.txt": f.prose(20 * KiB),
        "huge.txt": f.prose(3 * MiB),
        "app.py": f.source_code(50 * KiB),
        "notes.md": "# 会议纪要\n预算已批准。\n".encode() * 3000,
        "empty.docx": b"",
        "tiny.txt": b"ok\n",
    }


@pytest.fixture(scope="module")
def benign(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return _benign(tmp_path_factory.mktemp("scratch"))


def _write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def test_real_files_are_ok_even_when_their_body_is_random(tmp_path: Path,
                                                          benign: dict[str, bytes]) -> None:
    for name, data in benign.items():
        result = look(_write(tmp_path, name, data))
        assert result.readable and result.kind == "ok", (name, result.reasons)
        assert not result.magic_mismatch and result.reasons
    zipped = look(tmp_path / "random.zip")
    assert zipped.random_windows > 0 and zipped.random_expected  # random, and rightly so
    assert look(tmp_path / "photo.jpg").random_windows > 0


ATTACKS: dict[str, Callable[[bytes], bytes]] = {
    "whole": f.encrypt_whole,
    "first MiB": f.encrypt_head,
    "every 2nd block": lambda data: f.encrypt_every(data, 2),
    "every 4th block": lambda data: f.encrypt_every(data, 4),
}


def _cases(benign: dict[str, bytes]) -> Iterator[tuple[str, str, bytes]]:
    for name, data in benign.items():
        if len(data) < 64 * KiB:
            continue
        for attack, encrypt in ATTACKS.items():
            if attack.startswith("every") and len(data) < 4 * 64 * KiB:
                continue  # too short for the pattern to touch more than a block or two
            yield name, attack, encrypt(data)


def test_every_attack_is_encrypted_with_a_reason_naming_the_signal(
        tmp_path: Path, benign: dict[str, bytes]) -> None:
    caught: dict[str, list[str]] = {}
    missed = []
    for name, attack, data in _cases(benign):
        fmt = format_for(name)
        intact_header = attack.startswith("every")
        if intact_header and fmt is not None and fmt[1].random_expected:
            continue  # header intact, random body expected: for the rename/churn signals
        result = look(_write(tmp_path, name, data))
        if result.kind != "encrypted":
            missed.append((name, attack, result.reasons))
            continue
        text = " ".join(result.reasons)
        assert "not a" in text or "windows random" in text, text
        assert result.magic_mismatch or result.random_windows > 0
        caught.setdefault(attack, []).append(name)
    assert not missed, missed
    assert set(caught) == set(ATTACKS)


def test_magic_mismatch_names_the_format_and_the_bytes_found(tmp_path: Path,
                                                             benign: dict[str, bytes]) -> None:
    data = f.encrypt_whole(benign["report.docx"])
    result = look(_write(tmp_path, "report.docx", data))
    assert result.kind == "encrypted" and result.magic_mismatch
    assert f"report.docx: not a zip container (starts {data[0]:02x} {data[1]:02x}" \
        in result.reasons[0]
    assert result.random_windows == result.windows > 0
    assert f"{result.windows} of {result.windows} windows random" in result.reasons[1]
    assert f"threshold {CHI_SQUARE_THRESHOLD:.0f}" in result.reasons[1]


@pytest.mark.parametrize("every", [2, 3, 4, 5])
def test_intermittent_encryption_of_a_large_csv_is_caught_past_the_head(tmp_path: Path,
                                                                       every: int) -> None:
    data = f.encrypt_every(f.csv_text(200000), every)  # ~ 9 MiB, header block intact
    assert len(data) > 8 * DEFAULT_BUDGET
    result = look(_write(tmp_path, "ledger.csv", data))
    assert result.kind == "encrypted", result.reasons
    assert result.chi_square[0] > CHI_SQUARE_THRESHOLD  # the head window saw plain text
    assert 0 < result.random_windows < result.windows
    assert result.bytes_read <= DEFAULT_BUDGET


def test_intermittent_encryption_behind_an_intact_sqlite_header(tmp_path: Path) -> None:
    data = f.encrypt_every(f.sqlite_db(tmp_path / "db.sqlite", rows=40000), 3)
    result = look(_write(tmp_path, "permits.db", data))
    assert not result.magic_mismatch and result.kind == "encrypted", result.reasons
    assert "SQLite database signature present" in result.reasons[0]


def test_first_mib_of_a_large_text_file(tmp_path: Path) -> None:
    data = f.encrypt_head(f.prose(2 * MiB) * 20)  # 40 MiB: only the head window is in it
    result = look(_write(tmp_path, "archive.txt", data))
    assert result.kind == "encrypted" and result.random_windows >= 1, result.reasons


def test_a_small_encrypted_text_file_is_not_text(tmp_path: Path) -> None:
    result = look(_write(tmp_path, "passwords.txt", f.encrypt_whole(f.prose(2 * KiB))))
    assert result.windows == 0 and result.kind == "encrypted"
    assert "control bytes" in result.reasons[0]
    utf16 = "\ufeff会议纪要 预算已批准".encode("utf-16")
    assert look(_write(tmp_path, "utf16.txt", utf16 * 40)).kind == "ok"


def test_renamed_files_are_judged_by_their_known_extension(tmp_path: Path) -> None:
    result = look(_write(tmp_path, "ledger.csv.locked", f.encrypt_whole(f.csv_text(5000))))
    assert result.kind == "encrypted" and result.extension == "csv"
    assert result.reasons[0] == "ledger.csv.locked: judged as .csv"
    gz = format_for("logs.tar.gz")
    assert gz is not None and gz[0] == "gz"
    assert format_for("Makefile") is None and format_for(".bashrc") is None


def test_random_content_of_an_unknown_format_is_unknown_not_encrypted(tmp_path: Path) -> None:
    result = look(_write(tmp_path, "vault.bin", f.noise(100 * KiB)))
    assert result.kind == "unknown" and result.readable
    assert "format unknown" in result.reasons[-1]
    assert look(_write(tmp_path, "keys.kdbx", f.noise(100 * KiB))).kind == "ok"
    assert look(_write(tmp_path, "plain.bin", f.prose(100 * KiB))).kind == "ok"


def test_links_fifos_sockets_and_vanished_files_are_not_read(tmp_path: Path) -> None:
    real = _write(tmp_path, "real.csv", f.csv_text(100))
    (tmp_path / "link.csv").symlink_to(real)
    (tmp_path / "dangling.csv").symlink_to(tmp_path / "nowhere")
    os.mkfifo(tmp_path / "pipe.csv")
    (tmp_path / "folder.csv").mkdir()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "s.csv"))
        for name, why in [("link.csv", "symbolic link"), ("dangling.csv", "symbolic link"),
                          ("pipe.csv", "fifo"), ("folder.csv", "directory"),
                          ("s.csv", "socket"), ("gone.csv", "cannot stat")]:
            result = look(tmp_path / name)
            assert not result.readable and result.kind == "unknown", name
            assert why in result.reasons[0] and result.bytes_read == 0
    assert not look(Path("bad\0name.txt")).readable


def test_a_file_swapped_for_a_link_after_lstat_is_refused_by_o_nofollow(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = _write(tmp_path, "secret.txt", b"another agency's secret\n" * 500)
    victim = _write(tmp_path, "victim.txt", f.prose(10 * KiB))
    real_open = content._open

    def swap_then_open(path: Path) -> int:
        path.unlink()
        path.symlink_to(secret)
        return real_open(path)

    monkeypatch.setattr(content, "_open", swap_then_open)
    result = look(victim)
    assert not result.readable and "cannot open" in result.reasons[0]


def test_a_directory_swapped_for_a_link_to_another_tree_is_not_followed(tmp_path: Path) -> None:
    # restic read agency A's docs/ff.txt; then A swaps docs/ for a link to agency B's tree.
    other = tmp_path / "agency-b"
    other.mkdir()
    _write(other, "ff.txt", b"\x8f\x3a" + bytes(range(256)) * 64)
    mine = tmp_path / "agency-a"
    (mine / "docs").mkdir(parents=True)
    (mine / "docs").rmdir()
    (mine / "docs").symlink_to(other)
    result = look(mine / "docs" / "ff.txt")
    assert not result.readable and result.bytes_read == 0
    assert "cannot open" in result.reasons[0]


def test_errors_while_reading_are_a_reason(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "data.csv", f.csv_text(1000))

    def fail(fd: int, length: int, offset: int) -> bytes:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "pread", fail)
    result = look(path)
    assert not result.readable and "cannot read (input/output error)" in result.reasons[0]


def test_an_unreadable_file_is_a_reason(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "locked.csv", f.csv_text(10))
    path.chmod(0)
    if os.geteuid() == 0:  # root reads a mode-000 file: be refused the way others are

        def refuse(*args: object, **kwargs: object) -> int:
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(os, "open", refuse)
    result = look(path)
    assert not result.readable and "cannot open (permission denied)" in result.reasons[0]


@pytest.mark.parametrize("budget", [0, 1, 100, 1023, 4095, 4096, 8191, 8192, 20000,
                                    DEFAULT_BUDGET, 1 * MiB])
def test_the_read_never_exceeds_the_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           budget: int) -> None:
    path = _write(tmp_path, "big.pdf", f.encrypt_whole(f.prose(2 * MiB + 12345)))
    counted = []
    real_pread = os.pread

    def counting(fd: int, length: int, offset: int) -> bytes:
        data = real_pread(fd, length, offset)
        counted.append(len(data))
        return data

    monkeypatch.setattr(os, "pread", counting)
    result = look(path, budget=budget)
    assert sum(counted) == result.bytes_read <= budget
    # Below 1029 bytes the %PDF- search (first KiB) cannot conclude: unknown, not ok.
    assert result.kind == ("unknown" if budget < 1029 else "encrypted"), result.reasons
    if 0 < budget < 1029:
        assert "not checked (only" in result.reasons[0]


def test_a_file_within_the_budget_is_read_whole(tmp_path: Path) -> None:
    data = f.csv_text(3000)
    result = look(_write(tmp_path, "a.csv", data))
    assert result.bytes_read == result.size == len(data)
    assert result.windows == len(data) // WINDOW


@pytest.mark.parametrize("size", [1, 4096, WINDOW, DEFAULT_BUDGET + 1, 10 * MiB + 7,
                                  10**12])
def test_plan_windows_are_disjoint_head_to_tail_and_within_budget(size: int) -> None:
    reads = plan(size, DEFAULT_BUDGET)
    assert sum(length for _, length in reads) <= DEFAULT_BUDGET
    assert reads[0][0] == 0 and reads[-1][0] + reads[-1][1] == size
    for (a, la), (b, _) in itertools.pairwise(reads):
        assert a + la <= b
    assert plan(0, DEFAULT_BUDGET) == [] and plan(size, 0) == []


def test_chi_square_separates_random_from_structured_bytes() -> None:
    assert chi_square(f.noise(WINDOW)) < CHI_SQUARE_THRESHOLD
    assert chi_square(f.prose(WINDOW)) > 10 * CHI_SQUARE_THRESHOLD
    assert chi_square(f.noise(3 * WINDOW).hex().encode()[:WINDOW]) > 10 * CHI_SQUARE_THRESHOLD
    assert chi_square(b"") == 0.0
    misses = sum(chi_square(f.noise(WINDOW, seed=s)) >= CHI_SQUARE_THRESHOLD
                 for s in range(200))
    assert misses <= 1


def test_the_shipped_table_covers_the_promised_formats() -> None:
    table = formats()
    promised = {"docx": "504b0304", "xlsx": "504b0304", "pptx": "504b0304", "odt": "504b0304",
                "zip": "504b0506", "jar": "504b0304", "pdf": "255044462d",
                "png": "89504e470d0a1a0a", "jpg": "ffd8ff", "jpeg": "ffd8ff",
                "gif": "474946383961", "gz": "1f8b", "tgz": "1f8b",
                "sqlite": "53514c69746520666f726d6174203300", "db": "53514c697465",
                "bz2": "425a68", "xz": "fd377a585a00", "7z": "377abcaf271c",
                "rar": "526172211a07", "doc": "d0cf11e0", "xls": "d0cf11e0",
                "ppt": "d0cf11e0", "mp4": "66747970", "mov": "66747970"}
    for ext, magic in promised.items():
        assert any(s.magic.hex().startswith(magic) for s in table[ext].signatures), ext
    pdf = table["pdf"].signatures[0]
    assert pdf.within == 1024 and table["mp4"].signatures[0].offset == 4
    for ext in ("csv", "txt", "py", "sql"):
        assert table[ext].text and not table[ext].random_expected
    raw = json.loads(resources.files("drbackup.guard").joinpath("signatures.json").read_text())
    assert raw["comment"] and all(entry["comment"] for entry in raw["formats"])


def test_a_pdf_header_may_sit_anywhere_in_the_first_kib(tmp_path: Path) -> None:
    late = b"\0" * 1000 + f.pdf()
    assert look(_write(tmp_path, "late.pdf", late)).kind == "ok"
    too_late = b" " * 1100 + f.pdf()
    assert look(_write(tmp_path, "later.pdf", too_late)).magic_mismatch
