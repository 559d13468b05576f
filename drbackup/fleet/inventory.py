"""The city inventory (`drbackup fleet report --expect FILE`): the agencies that must be
protected, and optionally the GB/T 20988 level each must meet. Two forms, told apart by the
file's first meaningful line:

    # plain list: one agency id a line; '#' starts a comment
    planning
    water-board

    # TOML (any line of the form `[agencies.<id>]` or `[agencies]`)
    [agencies.planning]
    level = 3              # optional: overrides the level the hosts' configs require
    name = "Planning bureau"   # optional: shown beside the id
    [agencies.water-board]
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from drbackup.config.models import is_identifier
from drbackup.errors import ConfigError, NotFoundError

_TOML_LINE = re.compile(r"\s*\[(agencies)([.\]])")
_HINT = ("write one agency id a line, or TOML tables [agencies.<id>] with optional level = 1-6 "
         "and name = \"...\" (docs/fleet.md)")


@dataclass(frozen=True)
class ExpectedAgency:
    agency: str
    level: int | None = None  # the city's required level; None: the hosts' configs decide
    name: str | None = None


def _meaningful(text: str) -> list[str]:
    return [line.split("#", 1)[0].strip() for line in text.splitlines()
            if line.split("#", 1)[0].strip()]


def parse_inventory(text: str, *, where: str = "inventory") -> list[ExpectedAgency]:
    """The expected agencies, in file order. Raises ConfigError naming the bad line."""
    lines = _meaningful(text)
    if lines and _TOML_LINE.match(lines[0]):
        return _from_toml(text, where)
    found: list[ExpectedAgency] = []
    for line in lines:
        if not is_identifier(line):
            raise ConfigError(f"{where}: {line[:60]!r} is not an agency id", _HINT)
        found.append(ExpectedAgency(line))
    return _unique(found, where)


def _from_toml(text: str, where: str) -> list[ExpectedAgency]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}", _HINT) from None
    agencies = data.get("agencies")
    if set(data) - {"agencies"} or not isinstance(agencies, dict):
        raise ConfigError(f"{where}: only [agencies.<id>] tables are allowed", _HINT)
    found: list[ExpectedAgency] = []
    for agency, entry in agencies.items():
        if not is_identifier(agency) or not isinstance(entry, dict) \
                or set(entry) - {"level", "name"}:
            raise ConfigError(f"{where}: [agencies.{str(agency)[:60]}] is not an agency entry",
                              _HINT)
        level, name = entry.get("level"), entry.get("name")
        if level is not None and (isinstance(level, bool) or not isinstance(level, int)
                                  or not 1 <= level <= 6):
            raise ConfigError(f"{where}: agencies.{agency}.level must be 1-6", _HINT)
        if name is not None and (not isinstance(name, str) or len(name) > 200):
            raise ConfigError(f"{where}: agencies.{agency}.name must be a short text", _HINT)
        found.append(ExpectedAgency(agency, level, name))
    return _unique(found, where)


def _unique(found: list[ExpectedAgency], where: str) -> list[ExpectedAgency]:
    seen: set[str] = set()
    for entry in found:
        if entry.agency in seen:
            raise ConfigError(f"{where}: agency {entry.agency!r} is listed twice", _HINT)
        seen.add(entry.agency)
    return found


def load_inventory(path: Path) -> list[ExpectedAgency]:
    """Raises NotFoundError (unreadable) or ConfigError (malformed)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise NotFoundError(f"cannot read the city inventory {path}: "
                            f"{getattr(exc, 'strerror', None) or exc}", _HINT) from None
    return parse_inventory(text, where=str(path))
