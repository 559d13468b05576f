"""A realistic agency file share for the ransomware-detection benchmark, made from a seed.

Every file is a real format (bench.guard_formats makes each kind's bytes), in department / year /
project folders under the names people give files. `make_corpus` writes the tree; `build(kind,
rng, size)` makes one file's bytes (bench.guard_workloads uses it for new versions). Each file has
its own seed drawn from the corpus seed: the same seed gives the same tree and the same bytes.
"""

from __future__ import annotations

import math
import os
import random
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.guard_formats import KINDS, KiB, MiB, build, jpeg, kind_of, png, sql_dump, w_paragraph
from bench.guard_text import (
    APPS,
    CSV_HEADERS,
    DEPTS,
    IDENTS,
    LAST,
    SERVICES,
    TOPICS,
    VERBS,
    YEARS,
    csv_rows,
    log_text,
    paragraphs,
    sentence,
    sql_row,
    when,
)

__all__ = ["CSV_HEADERS", "KINDS", "Corpus", "CorpusFile", "KiB", "MiB", "build", "csv_rows",
           "jpeg", "kind_of", "log_text", "make_corpus", "paragraphs", "place", "png", "sentence",
           "sql_dump", "sql_row", "w_paragraph"]


# The share: which kinds, how large, in which folders, under which names.

PROFILE: dict[str, tuple[int, int, int, str]] = {  # weight, KiB from, KiB to, "folder|name|..."
    "docx": (14, 6, 200, "|{Topic} {year}|Minutes {date}|{dept} report Q{q} {year}|Letter to "
             "{last}|contract_{n}|{Topic} - draft v{v}"),
    "xlsx": (9, 4, 150, "|Budget {year}|Timesheet {month} {year}|inventory_{date}|{Topic} Q{q}"),
    "pptx": (3, 40, 200, "|{Topic} presentation|Board meeting {date}|{Topic} kick-off"),
    "pdf": (13, 10, 200, "|invoice_{n}|{Topic} - signed|scan_{date}_{v}|{Topic} {year} final"),
    "jpg": (14, 30, 200, "|IMG_{n}|DSC_{n}|site visit {date} {v}"),
    "png": (7, 8, 200, "|Screenshot {date} at {time}|chart_{topic}|logo_{v}|diagram-{topic}"),
    "txt": (6, 2, 40, "|notes {date}|readme|{Topic} notes|phone list"),
    "md": (3, 2, 30, "|README|{Topic} notes|meeting-notes-{date}"),
    "csv": (6, 2, 150, "|export_{date}|{topic}_{year}|contacts|transactions {month} {year}"),
    "json": (4, 2, 60, "|config|settings|{topic}|export-{date}"),
    "py": (5, 2, 40, "IT/software/{app}/src|{verb}_{ident}|utils|models|{ident}"),
    "js": (4, 2, 40, "IT/software/{app}/static/js|{verb}-{ident}|app|index"),
    "log": (4, 2, 120, "IT/logs/{service}|{service}|{service}-error|access"),
    "gz": (3, 2, 60, "IT/logs/{service}|{service}.log.{v}"),
    "sqlite": (1, 8, 200, "{dept}/Data|{topic}|cases|bookings"),
    "so": (1, 20, 200, "IT/software/{app}/lib|lib{ident}"),
    "sql": (1, 8, 200, "IT/db-dumps|{ident}_dump_{date}"),
    "mp4": (1, 100, 200, "Communications/Video/{year}|{Topic} {date}|VID_{n}")}
LARGE_KINDS = ("csv", "log", "sqlite", "sql", "mp4")


def place(rng: random.Random, kind: str) -> str:
    """A path for a new file of `kind`: its folder and a name people would give it."""
    day, topic, dept = when(rng), rng.choice(TOPICS), rng.choice(list(DEPTS))
    fields = dict(Topic=topic.title() if rng.random() < .6 else topic.capitalize(),
                  Album=topic.title(), topic=topic.replace(" ", "_"), year=day.year,
                  date=f"{day:%Y-%m-%d}",
                  time=f"{day:%H.%M.%S}", month=f"{day:%B}", q=(day.month - 1) // 3 + 1,
                  n=rng.randint(1000, 99999), v=rng.randint(1, 9), last=rng.choice(LAST),
                  dept=dept, service=rng.choice(SERVICES), ident=rng.choice(IDENTS),
                  verb=rng.choice(VERBS), app=rng.choice(APPS))
    where, *names = PROFILE[kind][3].split("|")
    if kind == "json" and rng.random() < .6:
        where = "IT/software/{app}/config"
    elif kind == "jpg" and rng.random() < .5:
        where = "Communications/Photos/{year}/{Album}"
    elif not where:
        sub = rng.choice(DEPTS[dept])
        where = (f"Projects/{sub}/{rng.choice(('Reports', 'Drawings', 'Correspondence'))}"
                 if dept == "Projects" else f"{dept}/{rng.choice(YEARS)}/{sub}")
    ext = rng.choice((".jpg", ".jpg", ".JPG", ".jpeg")) if kind == "jpg" else f".{kind}"
    return f"{where}/{rng.choice(names)}{ext}".format(**fields)


@dataclass(frozen=True)
class CorpusFile:
    path: str  # relative to the corpus root, POSIX separators
    kind: str
    size: int


@dataclass(frozen=True)
class Corpus:
    root: Path
    files: tuple[CorpusFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def paths(self, kind: str | None = None) -> list[Path]:
        return [self.root / f.path for f in self.files if kind in (None, f.kind)]


def _sizes(rng: random.Random, kinds: list[str], target: int) -> list[int]:
    """Small files log-uniform in their kind's range; what the target leaves goes to a few large
    files (1-40 MiB, a large SQL dump first), which replace the last, randomly chosen, kinds."""
    sizes = [int(KiB * math.exp(rng.uniform(math.log(PROFILE[k][1]), math.log(PROFILE[k][2]))))
             for k in kinds]
    spare = target - sum(sizes)
    if spare < MiB:
        return [max(KiB, s * target // sum(sizes)) for s in sizes] if spare < 0 else sizes
    large = min(max(math.ceil(spare / (40 * MiB)), round(spare / (8 * MiB))),
                max(1, len(kinds) // 20))
    spare += sum(sizes[-large:])
    weights = [min(8.0, rng.paretovariate(1.2)) for _ in range(large)]  # a few very large
    for j, weight in enumerate(weights, 1):
        kinds[-j] = "sql" if j == 1 else rng.choice(LARGE_KINDS)
        sizes[-j] = int(min(40 * MiB, max(MiB, spare * weight / sum(weights))))
    return sizes


def _write(task: tuple[Path, str, int, int, float]) -> int:
    path, kind, size, seed, mtime = task
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data := build(kind, random.Random(seed), size))
    os.utime(path, (mtime, mtime))
    return len(data)


def make_corpus(root: Path, *, files: int = 2000, target_bytes: int = 150 * MiB, seed: int = 0,
                workers: int | None = None) -> Corpus:
    """Write a share of `files` files of about `target_bytes` under `root`, every kind at least
    once (when files >= len(KINDS)). The same seed gives the same tree and bytes, whatever the
    number of `workers` processes writing it (default: up to 2)."""
    rng = random.Random(seed)
    kinds = list(KINDS[:files]) + rng.choices(KINDS, [PROFILE[k][0] for k in KINDS],
                                              k=max(0, files - len(KINDS)))
    taken: set[str] = set()
    plan: list[tuple[str, str, int, int, float]] = []
    for kind, size in zip(kinds, _sizes(rng, kinds, target_bytes), strict=True):
        rel = original = place(rng, kind)
        for copy in range(2, 10_000):
            if rel.lower() not in taken:  # case-insensitive: the share may be SMB-exported
                break
            stem, dot, ext = original.rpartition(".")
            rel = f"{stem} ({copy}){dot}{ext}"
        taken.add(rel.lower())
        plan.append((rel, kind, size, rng.getrandbits(64), when(rng).timestamp()))
    tasks = [(root / rel, kind, size, seed, mtime) for rel, kind, size, seed, mtime in plan]
    workers = workers or min(2, os.cpu_count() or 1)
    if workers > 1:  # the largest first, so that no worker is left with a big file at the end
        order = sorted(range(len(tasks)), key=lambda i: -tasks[i][2])
        with ProcessPoolExecutor(workers) as pool:
            done = dict(zip(order, pool.map(_write, [tasks[i] for i in order], chunksize=2),
                            strict=True))
        written = [done[i] for i in range(len(tasks))]
    else:
        written = [_write(task) for task in tasks]
    return Corpus(root, tuple(CorpusFile(rel, kind, n)
                              for (rel, kind, *_), n in zip(plan, written, strict=True)))
