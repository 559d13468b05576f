"""Building test data trees and comparing restored trees with their originals."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    kind: str  # file, dir, symlink
    mode: int
    sha256: str | None = None
    link: str | None = None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def manifest(root: Path) -> dict[str, Entry]:
    """Every entry below root by relative path: type, permission bits, content hash or link."""
    entries: dict[str, Entry] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        for name in dirnames + filenames:
            path = base / name
            rel = str(path.relative_to(root))
            info = path.lstat()
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                entries[rel] = Entry("symlink", 0, link=os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                entries[rel] = Entry("dir", mode)
            else:
                entries[rel] = Entry("file", mode, sha256=sha256_file(path))
    return entries


def make_mixed_tree(root: Path, *, big_bytes: int = 50 * 1024 * 1024, small_files: int = 1000
                    ) -> None:
    """Nested dirs, unicode names, a 0-byte file, a symlink, an empty dir, one big random file
    and many small files: the Foundation round-trip tree."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "nested" / "deeper" / "deepest").mkdir(parents=True)
    (root / "nested" / "deeper" / "deepest" / "leaf.txt").write_text("leaf\n")
    (root / "城市规划").mkdir()
    (root / "城市规划" / "许可证-2026.txt").write_text("许可证 data ✓\n", encoding="utf-8")
    (root / "Ünïcödé file.txt").write_text("ünïcödé\n", encoding="utf-8")
    (root / "empty-file").write_bytes(b"")
    (root / "empty-dir").mkdir()
    (root / "link-to-leaf").symlink_to("nested/deeper/deepest/leaf.txt")
    script = root / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o750)
    private = root / "private.key"
    private.write_text("not really a key\n")
    private.chmod(0o600)
    with (root / "big.bin").open("wb") as handle:
        remaining = big_bytes
        while remaining > 0:
            chunk = os.urandom(min(remaining, 1 << 20))
            handle.write(chunk)
            remaining -= len(chunk)
    small = root / "small"
    for index in range(small_files):
        folder = small / f"d{index // 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{index:04d}.txt").write_text(f"small file {index}\n" * (index % 7 + 1))


def office_tree(root: Path, files: int = 60) -> Path:
    """Office documents, CSV and prose in four folders: what an agency share holds (#16)."""
    from tests.support import formats

    for i in range(files):
        folder = root / f"dept-{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        if i % 3 == 0:
            (folder / f"report-{i}.docx").write_bytes(formats.office_zip("docx", 12 * 1024))
        elif i % 3 == 1:
            (folder / f"ledger-{i}.csv").write_bytes(formats.csv_text(150, seed=i))
        else:
            (folder / f"minutes-{i}.txt").write_bytes(formats.prose(10 * 1024, seed=i))
    return root
