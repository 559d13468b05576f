"""Signs of a ransomware attack in names alone (#16): ransom notes, ransomware extensions and
mass renames. The note globs and extensions are data, shipped in indicators.json with a comment
on each entry; callers pass the operator's extra names (config) as `extra`.

A match here is a hint, not a verdict: the verdict (guard/verdict.py) counts matches across a
backup's new files and weighs them with the churn and content signals.
"""

from __future__ import annotations

import fnmatch
import json
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Indicators:
    note_globs: tuple[str, ...]
    extensions: frozenset[str]  # lower case, no dot


def _extension(text: str) -> str:
    return text.strip().lstrip(".").lower()


@cache
def shipped() -> Indicators:
    """The shipped lists, checked: globs without brackets, extensions unique and bare."""
    raw: Any = json.loads(resources.files("drbackup.guard").joinpath("indicators.json")
                          .read_text(encoding="utf-8"))
    globs = tuple(str(entry["glob"]) for entry in raw["ransom_notes"])
    extensions = [str(entry["extension"]) for entry in raw["extensions"]]
    for glob in globs:
        if "[" in glob or "]" in glob or not glob.strip("*?"):
            raise ValueError(f"indicators.json: ransom note glob {glob!r} is malformed")
    if len(set(extensions)) != len(extensions) or any(
            ext != _extension(ext) or not ext or "." in ext for ext in extensions):
        raise ValueError("indicators.json: extensions must be unique, lower case, no dot")
    return Indicators(globs, frozenset(extensions))


def _glob_pattern(glob: str) -> re.Pattern[str]:
    # Brackets match themselves: a note name like "[HELP].txt" is not a character class.
    return re.compile(fnmatch.translate(glob.lower().replace("[", "[[]")))


@cache
def _note_patterns(extra: tuple[str, ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    globs = (*shipped().note_globs, *(g for g in extra if g.strip("*? ")))
    return tuple((glob, _glob_pattern(glob)) for glob in globs)


def _name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


@cache
def _any_note(extra: tuple[str, ...]) -> re.Pattern[str] | None:
    """All note globs as one pattern: most names match none, and one match says so (None
    when the globs' patterns cannot be joined)."""
    try:
        return re.compile("|".join(f"(?:{p.pattern})" for _, p in _note_patterns(extra)))
    except re.error:
        return None


@cache
def _extensions(extra: tuple[str, ...]) -> frozenset[str]:
    return shipped().extensions | {_extension(e) for e in extra}


def which_note(name: str, extra: Sequence[str] = ()) -> str | None:
    """The ransom-note glob a file name (or the last part of a path) matches, if any."""
    lowered = _name(name).lower()
    extra = tuple(extra)
    joined = _any_note(extra)
    if joined is not None and not joined.match(lowered):
        return None
    for glob, pattern in _note_patterns(extra):
        if pattern.match(lowered):
            return glob
    return None


def ransom_note(name: str, extra: Sequence[str] = ()) -> bool:
    """Whether a file name is a known ransom note's (case-insensitive globs)."""
    return which_note(name, extra) is not None


def ransom_extension(name: str, extra: Sequence[str] = ()) -> str | None:
    """The known ransomware extension a file name ends with, as ".locked", or None. Only the
    last extension counts: report.locked.pdf is a PDF."""
    suffix = posixpath.splitext(_name(name))[1]
    ext = _extension(suffix)
    if not ext:
        return None
    if ext in _extensions(tuple(extra)):
        return f".{ext}"
    return None


def mass_renames(gone: Mapping[str, int], new: Mapping[str, int], *,
                 grow: int = 0) -> list[tuple[str, str]]:
    """Pairs (old path, new path) of a removed file and a new file in the same directory whose
    name is the old name plus added extensions (report.docx → report.docx.locked) or, failing
    that, the old stem with another extension (report.docx → report.locked), and whose size is
    the old size, or up to `grow` bytes more (ransomware that appends its key). Each path is in
    at most one pair; a case-only change of extension is not a rename here."""
    by_prefix: dict[tuple[str, str], list[str]] = {}
    for path in sorted(new):
        if path in gone:
            continue
        parent, name = posixpath.split(path)
        for i, char in enumerate(name):
            if char == "." and name[:i].strip("."):
                by_prefix.setdefault((parent, name[:i]), []).append(path)

    used: set[str] = set()
    paired: dict[str, str] = {}

    def take(old: str, key: tuple[str, str], suffix: str | None) -> None:
        for candidate in by_prefix.get(key, []):
            if candidate in used or not gone[old] <= new[candidate] <= gone[old] + grow:
                continue
            if suffix is not None:
                rest = posixpath.basename(candidate)[len(key[1]):]
                if rest.lower() == suffix.lower():
                    continue
            used.add(candidate)
            paired[old] = candidate
            return

    olds = sorted(path for path in gone if path not in new)
    for old in olds:
        take(old, posixpath.split(old), None)
    for old in olds:
        if old in paired:
            continue
        parent, name = posixpath.split(old)
        stem, suffix = posixpath.splitext(name)
        if suffix:
            take(old, (parent, stem), suffix)
    return sorted(paired.items())
