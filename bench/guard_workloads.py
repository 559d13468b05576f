"""What happens to a bench.guard_corpus share between two backups, for the ransomware-detection
benchmark: the normal office day, ransomware attacks, and benign mass changes that look like them.

A workload is a function (root, rng) -> WorkloadReport that changes the share in place and says
what it did; the public functions take keyword parameters (the share of files touched, ...) and
the registries NORMAL, ATTACKS and BENIGN hold them with their defaults and a line describing
each (for the results table). Attacks encrypt with AES-256-CTR under a per-file key drawn from the
rng, as real ransomware does: the bytes are indistinguishable from random. Ransom notes are never
encrypted, moved or counted as the share's files.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import random
import re
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from bench import guard_corpus as gc

NOTE_NAMES = ("README_DECRYPT.txt", "HOW_TO_RECOVER_FILES.txt")
MARK = b"\x8aLOCKED\x8a"  # slow_attack's footer mark, how it knows which files it already did
TODAY = datetime(2026, 1, 12, 8, tzinfo=UTC)  # the share's "now", for new log lines and names


@dataclass
class WorkloadReport:
    """What a workload did, as paths relative to the share's root (POSIX separators)."""

    workload: str
    created: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (old, new)
    notes: list[str] = field(default_factory=list)  # ransom notes written (also in created)

    @property
    def touched(self) -> int:
        return len(self.created) + len(self.modified) + len(self.removed) + len(self.renamed)


Workload = Callable[[Path, random.Random], WorkloadReport]


@dataclass(frozen=True)
class Scenario:
    """A registry entry: a workload with its parameters, and the line describing it."""

    description: str
    run: Workload

    def __call__(self, root: Path, rng: random.Random) -> WorkloadReport:
        return self.run(root, rng)


def files_of(root: Path) -> list[Path]:
    """The share's files, sorted, ransom notes left out."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name not in NOTE_NAMES)


def pick(rng: random.Random, items: list[Path], share: float) -> list[Path]:
    """`share` of `items` (at least one when there are any), chosen by the rng, sorted."""
    count = min(len(items), max(1, round(len(items) * share)))
    return sorted(rng.sample(items, count))


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


# Attacks.

def cipher(rng: random.Random) -> CipherContext:
    """A fresh AES-256-CTR encryptor: a per-file key and nonce, as ransomware uses."""
    return Cipher(algorithms.AES(rng.randbytes(32)), modes.CTR(rng.randbytes(16))).encryptor()


def encrypt(data: bytes, rng: random.Random) -> bytes:
    enc = cipher(rng)
    return enc.update(data) + enc.finalize()


def ransom_note(rng: random.Random) -> bytes:
    victim = rng.randbytes(16).hex()
    onion = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz234567", k=56))
    wallet = "bc1q" + "".join(rng.choices("023456789acdefghjklmnpqrstuvwxyz", k=38))
    return (f"~~~ ALL YOUR FILES ARE ENCRYPTED ~~~\n\nYour documents, databases, photos and "
            f"backups were encrypted with AES-256 and RSA-4096.\nNobody can recover them without "
            f"our decryptor.\n\nTo get your files back:\n  1. Install Tor Browser\n  2. Open "
            f"http://{onion}.onion/{victim}\n  3. Pay {rng.randint(2, 40) / 10} BTC to {wallet}\n\n"
            f"Your personal ID: {victim}\n\nDo not rename the files and do not try third-party "
            f"tools: you will lose your data forever.\n").encode()


def _drop_notes(root: Path, rng: random.Random, dirs: list[Path], name: str,
                report: WorkloadReport) -> None:
    for folder in dirs:
        (folder / name).write_bytes(ransom_note(rng))
        report.notes.append(_rel(root, folder / name))
    report.created += report.notes


def encrypt_in_place(root: Path, rng: random.Random, *, share: float = 1.0) -> WorkloadReport:
    """Encrypt `share` of the files whole, in place; names and sizes kept."""
    report = WorkloadReport("encrypt_in_place")
    for path in pick(rng, files_of(root), share):
        path.write_bytes(encrypt(path.read_bytes(), rng))
        report.modified.append(_rel(root, path))
    return report


def encrypt_rename_notes(root: Path, rng: random.Random, *, share: float = 1.0,
                         suffix: str = ".locked", replace_suffix: bool = False,
                         note: str = "README_DECRYPT.txt") -> WorkloadReport:
    """Encrypt `share` of the files into name + suffix (stem + suffix with replace_suffix),
    delete the originals, and drop the ransom note `note` in every folder hit."""
    report, folders = WorkloadReport("encrypt_rename_notes"), set()
    for path in pick(rng, files_of(root), share):
        target = path.with_suffix(suffix) if replace_suffix else path.with_name(path.name + suffix)
        if target.exists():  # report.docx and report.pdf both become report.lockbit
            target = path.with_name(path.name + suffix)
        target.write_bytes(encrypt(path.read_bytes(), rng))
        path.unlink()
        report.renamed.append((_rel(root, path), _rel(root, target)))
        folders.add(path.parent)
    _drop_notes(root, rng, sorted(folders), note, report)
    return report


def intermittent(root: Path, rng: random.Random, *, share: float = 1.0, every: int = 3,
                 block: int = 64 * gc.KiB) -> WorkloadReport:
    """Encrypt blocks 0, every, 2*every, ... of `block` bytes of `share` of the files, in place
    (a small file is all block 0): the fast "intermittent" mode of LockBit, BlackCat, Play."""
    report = WorkloadReport("intermittent")
    for path in pick(rng, files_of(root), share):
        enc = cipher(rng)
        with path.open("r+b") as f:
            for index in range(0, math.ceil(f.seek(0, 2) / block), every):
                f.seek(index * block)
                chunk = f.read(block)
                f.seek(index * block)
                f.write(enc.update(chunk))
        report.modified.append(_rel(root, path))
    return report


def first_mib(root: Path, rng: random.Random, *, share: float = 1.0,
              head: int = gc.MiB) -> WorkloadReport:
    """Encrypt the first `head` bytes of `share` of the files (smaller files whole), in place."""
    report = WorkloadReport("first_mib")
    for path in pick(rng, files_of(root), share):
        with path.open("r+b") as f:
            data = f.read(head)
            f.seek(0)
            f.write(encrypt(data, rng))
        report.modified.append(_rel(root, path))
    return report


def _marked(path: Path) -> bool:
    with path.open("rb") as f:
        if f.seek(0, 2) < len(MARK):
            return False
        f.seek(-len(MARK), 2)
        return f.read() == MARK


def slow_attack(root: Path, rng: random.Random, *, share: float = 0.02) -> WorkloadReport:
    """One step of a slow attack, to call before each of several backups: encrypt `share` of the
    files not yet encrypted, in place, each with a footer (its "encrypted key" and a mark)."""
    report = WorkloadReport("slow_attack")
    for path in pick(rng, [p for p in files_of(root) if not _marked(p)], share):
        path.write_bytes(encrypt(path.read_bytes(), rng) + rng.randbytes(256) + MARK)
        report.modified.append(_rel(root, path))
    return report


def mass_delete_note(root: Path, rng: random.Random, *, share: float = 0.6,
                     note_dirs: int = 4) -> WorkloadReport:
    """Delete `share` of the files; leave HOW_TO_RECOVER_FILES.txt in the root and a few of the
    folders hit (the data was "exfiltrated")."""
    report = WorkloadReport("mass_delete_note")
    victims = pick(rng, files_of(root), share)
    for path in victims:
        path.unlink()
        report.removed.append(_rel(root, path))
    folders = sorted({p.parent for p in victims} - {root})
    _drop_notes(root, rng, [root, *rng.sample(folders, min(note_dirs, len(folders)))],
                NOTE_NAMES[1], report)
    return report


# The normal day and benign mass changes.

def edit_docx(data: bytes, rng: random.Random) -> bytes:
    """A revised Word document: one paragraph reworded, a few paragraphs added at the end."""
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(buf, "w") as out:
        for info in src.infolist():
            part = src.read(info)
            if info.filename == "word/document.xml":
                xml = part.decode()
                if texts := re.findall(r"<w:t[^>]*>([^<]+)</w:t>", xml):
                    old = rng.choice(texts)
                    xml = xml.replace(f">{old}<", f">{escape(gc.sentence(rng))} {old}<", 1)
                new = gc.paragraphs(rng, rng.randint(200, 3000))
                added = "".join(gc.w_paragraph(p) for p in new)
                part = xml.replace("</w:body>", added + "</w:body>", 1).encode()
            out.writestr(info, part)
    return buf.getvalue()


def _edit(path: Path, kind: str, rng: random.Random) -> None:
    if kind == "csv":
        with path.open("r", encoding="utf-8") as f:
            header, rows = f.readline().strip(), sum(1 for _ in f)
        schema = next((s for s, cols in gc.CSV_HEADERS.items() if ",".join(cols) == header),
                      "assets")
        with path.open("a", encoding="utf-8") as f:
            f.write(gc.csv_rows(rng, schema, rows + 1, rng.randint(1, 40)))
    elif kind == "log":
        with path.open("a", encoding="utf-8") as f:
            f.write(gc.log_text(rng, rng.randint(500, 20_000), TODAY))
    elif kind in ("txt", "md"):
        with path.open("a", encoding="utf-8") as f:
            f.write("\n" + "\n\n".join(gc.paragraphs(rng, rng.randint(100, 2000))) + "\n")
    elif kind == "docx":
        path.write_bytes(edit_docx(path.read_bytes(), rng))
    elif kind == "json":
        doc = json.loads(path.read_text(encoding="utf-8"))
        doc["version"] = doc.get("version", 0) + 1
        doc.setdefault("items", []).append({"id": len(doc["items"]), "note": gc.sentence(rng)})
        path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    else:  # a spreadsheet saved again, a bit larger
        path.write_bytes(gc.build(kind, rng, int(path.stat().st_size * rng.uniform(1, 1.2))))


def daily_edits(root: Path, rng: random.Random, *, share: float = 0.01,
                new_docs: int = 3) -> WorkloadReport:
    """An office day: `share` of the files edited (rows appended to CSVs and logs, documents
    revised, spreadsheets saved again) and `new_docs` new documents."""
    report, files = WorkloadReport("daily_edits"), files_of(root)
    editable = [p for p in files if gc.kind_of(p) in ("csv", "log", "txt", "md", "docx", "xlsx",
                                                   "json")]
    for path in pick(rng, editable, share * len(files) / max(1, len(editable))):
        try:
            _edit(path, gc.kind_of(path) or "", rng)
        except (UnicodeDecodeError, ValueError, zipfile.BadZipFile, KeyError):
            continue  # encrypted by an attack under way: nobody can open it any more
        report.modified.append(_rel(root, path))
    for _ in range(new_docs):
        kind = rng.choice(("docx", "docx", "xlsx", "pdf"))
        path = root / gc.place(rng, kind)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(gc.build(kind, rng, rng.randint(8 * gc.KiB, 120 * gc.KiB)))
            report.created.append(_rel(root, path))
    return report


def bulk_photo_import(root: Path, rng: random.Random, *, count: int = 300,
                      folder: str | None = None) -> WorkloadReport:
    """`count` new camera JPEGs (and some PNG screenshots) in a new folder."""
    report = WorkloadReport("bulk_photo_import")
    target = root / (folder or f"Communications/Photos/Import {TODAY:%Y-%m-%d}")
    target.mkdir(parents=True, exist_ok=True)
    first = rng.randint(1000, 8000)
    for i in range(count):
        if rng.random() < .85:
            path = target / f"IMG_{first + i:04d}.JPG"
            path.write_bytes(gc.jpeg(rng, rng.randint(150, 600) * gc.KiB))
        else:
            path = target / f"Screenshot {first + i}.png"
            path.write_bytes(gc.png(rng, rng.randint(40, 300) * gc.KiB))
        report.created.append(_rel(root, path))
    return report


def log_rotation(root: Path, rng: random.Random, *, keep: int = 7) -> WorkloadReport:
    """logrotate (notifempty): every name.log.N.gz becomes name.log.N+1.gz (beyond `keep`
    deleted), name.log is gzipped into name.log.1.gz and starts again, empty or with new lines."""
    report = WorkloadReport("log_rotation")
    for log in [p for p in files_of(root) if p.suffix == ".log" and p.stat().st_size]:
        pattern = re.compile(re.escape(log.name) + r"\.(\d+)\.gz")
        olds = sorted(((int(m[1]), p) for p in log.parent.iterdir()
                       if (m := pattern.fullmatch(p.name))), reverse=True)
        for number, old in olds:
            if number >= keep:
                old.unlink()
                report.removed.append(_rel(root, old))
            else:
                new = log.with_name(f"{log.name}.{number + 1}.gz")
                old.rename(new)
                report.renamed.append((_rel(root, old), _rel(root, new)))
        rotated = log.with_name(log.name + ".1.gz")
        rotated.write_bytes(gzip.compress(log.read_bytes(), mtime=int(TODAY.timestamp())))
        fresh = gc.log_text(rng, rng.randint(100, 4000), TODAY) if rng.random() < .5 else ""
        log.write_text(fresh, encoding="utf-8")
        report.created.append(_rel(root, rotated))
        report.modified.append(_rel(root, log))
    return report


OFFICE_KINDS = ("docx", "xlsx", "pptx", "pdf")


def replace_documents(root: Path, rng: random.Random, *,
                      folder: str | None = None) -> WorkloadReport:
    """New versions of every office document and PDF under `folder` (default: the top folder
    with the most of them), same names: a department re-issuing its templates and reports."""
    report = WorkloadReport("replace_documents")
    docs = [p for p in files_of(root) if gc.kind_of(p) in OFFICE_KINDS]
    folder = folder or Counter(p.relative_to(root).parts[0] for p in docs).most_common(1)[0][0]
    for path in docs:
        if path.is_relative_to(root / folder):
            size = int(path.stat().st_size * rng.uniform(.8, 1.3))
            path.write_bytes(gc.build(gc.kind_of(path) or "docx", rng, size))
            report.modified.append(_rel(root, path))
    return report


def software_update(root: Path, rng: random.Random, *, share: float = 0.9,
                    added: float = 0.05) -> WorkloadReport:
    """A new release of the software trees (folders named 'software'): `share` of their files
    rewritten (sources, configs, ELF libraries) and `added` of that count of new modules."""
    report = WorkloadReport("software_update")
    tree = [p for p in files_of(root) if "software" in p.relative_to(root).parts]
    for path in pick(rng, tree, share):
        size = int(path.stat().st_size * rng.uniform(.9, 1.2))
        path.write_bytes(gc.build(gc.kind_of(path) or "so", rng, size))
        report.modified.append(_rel(root, path))
    for model in rng.sample(tree, min(len(tree), round(len(tree) * share * added))):
        new = model.with_name(f"{model.stem}_{rng.choice(('v2', 'compat', 'ext'))}{model.suffix}")
        if not new.exists():
            new.write_bytes(gc.build(gc.kind_of(model) or "so", rng, model.stat().st_size))
            report.created.append(_rel(root, new))
    return report


def tidy_name(name: str) -> str:
    """'report 2025.docx' -> 'report-2025.docx', 'Budget_2024 (2).xlsx' -> 'Budget-2024-2.xlsx'."""
    stem, dot, ext = name.rpartition(".") if "." in name else (name, "", "")
    return re.sub(r"[\s_()]+", "-", stem).strip("-") + dot + ext


def folder_reorganisation(root: Path, rng: random.Random, *,
                          share: float = 0.5) -> WorkloadReport:
    """Move `share` of the folders (all their files) into Archive/ or Current/ under their
    department and tidy the names (spaces to dashes); contents unchanged."""
    report = WorkloadReport("folder_reorganisation")
    by_folder: dict[Path, list[Path]] = {}
    for path in files_of(root):
        by_folder.setdefault(path.parent, []).append(path)
    for folder in pick(rng, [f for f in by_folder if f != root], share):
        top, *rest = folder.relative_to(root).parts
        target = root / top / rng.choice(("Archive", "Current")) / Path(*rest)
        target.mkdir(parents=True, exist_ok=True)
        for path in by_folder[folder]:
            new = target / tidy_name(path.name)
            new = new if not new.exists() else target / path.name
            if not new.exists():
                path.rename(new)
                report.renamed.append((_rel(root, path), _rel(root, new)))
    return report


def database_dump(root: Path, rng: random.Random, *, change: float = 0.3) -> WorkloadReport:
    """The nightly SQL dumps written again with `change` of their rows changed (a 4 MiB dump is
    created when the share has none)."""
    report = WorkloadReport("database_dump")
    dumps = [p for p in files_of(root) if p.suffix == ".sql"]
    if not dumps:
        dumps = [root / "IT/db-dumps/crm_dump.sql"]
        dumps[0].parent.mkdir(parents=True, exist_ok=True)
        dumps[0].write_bytes(gc.sql_dump(rng, 4 * gc.MiB))
        report.created.append(_rel(root, dumps[0]))
    for dump in dumps:
        out = []
        for line in dump.read_text(encoding="utf-8").splitlines(keepends=True):
            if line.startswith("INSERT INTO `") and line.endswith(");\n"):
                head, body = line.split(" VALUES (", 1)
                table = head.split("`")[1]
                rows = [gc.sql_row(rng, table, int(row.split(",", 1)[0]))[1:-1]
                        if rng.random() < change else row for row in body[:-3].split("),(")]
                line = f"{head} VALUES ({'),('.join(rows)});\n"
            elif line.startswith("-- Dump completed on"):
                line = f"-- Dump completed on {TODAY + timedelta(hours=rng.randint(14, 20))}\n"
            out.append(line)
        dump.write_text("".join(out), encoding="utf-8")
        if _rel(root, dump) not in report.created:
            report.modified.append(_rel(root, dump))
    return report


NORMAL: dict[str, Scenario] = {
    "daily_edits": Scenario("an office day: 1 % of files edited (rows appended, documents "
                            "revised), 3 new documents", daily_edits)}
ATTACKS: dict[str, Scenario] = {
    "encrypt_in_place": Scenario("every file encrypted whole in place (AES-CTR), names kept",
                                 encrypt_in_place),
    "encrypt_in_place_5pct": Scenario("5 % of the files encrypted whole in place, names kept",
                                      lambda root, rng: encrypt_in_place(root, rng, share=.05)),
    "encrypt_rename_notes": Scenario("every file encrypted into name.locked, original deleted, "
                                     "README_DECRYPT.txt in every folder", encrypt_rename_notes),
    "encrypt_rename_lockbit": Scenario(
        "every file encrypted into stem.lockbit, original deleted, ransom notes",
        lambda root, rng: encrypt_rename_notes(root, rng, suffix=".lockbit", replace_suffix=True)),
    "intermittent": Scenario("every 3rd 64 KiB block of every file encrypted (block 0 "
                             "included), names kept", intermittent),
    "first_mib": Scenario("the first MiB of every file encrypted (smaller files whole), names "
                          "kept", first_mib),
    "slow_attack": Scenario("2 % of the not yet encrypted files encrypted per call (one call "
                            "per backup), names kept", slow_attack),
    "mass_delete_note": Scenario("60 % of the files deleted, HOW_TO_RECOVER_FILES.txt in the "
                                 "root and 4 folders", mass_delete_note)}
BENIGN: dict[str, Scenario] = {
    "bulk_photo_import": Scenario("300 new camera JPEGs and screenshots in a new folder",
                                  bulk_photo_import),
    "log_rotation": Scenario("every .log gzipped to .log.1.gz (older ones shifted) and restarted",
                             log_rotation),
    "replace_documents": Scenario("new versions of all office documents and PDFs of the "
                                  "busiest department, same names", replace_documents),
    "software_update": Scenario("90 % of the software trees rewritten (sources, configs, ELF "
                                "libraries), a few new modules", software_update),
    "folder_reorganisation": Scenario("half the folders moved under Archive/ or Current/, "
                                      "names tidied, contents unchanged", folder_reorganisation),
    "database_dump": Scenario("the SQL dumps written again with 30 % of their rows changed",
                              database_dump)}
