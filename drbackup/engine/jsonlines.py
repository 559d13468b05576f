"""Tolerant parsing of restic's --json output: JSON lines mixed with plain text.

restic's stdout and stderr carry JSON messages interleaved with plain-text lines (cache warnings,
Go panics); a line that is not a JSON object is kept as text, never an error.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

JsonObject = dict[str, Any]


@dataclass
class ParsedLines:
    """Lines split into JSON objects (in order) and plain text lines."""

    messages: list[JsonObject] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    def of_type(self, message_type: str) -> list[JsonObject]:
        return [m for m in self.messages if m.get("message_type") == message_type]

    def last_of_type(self, message_type: str) -> JsonObject | None:
        found = self.of_type(message_type)
        return found[-1] if found else None


def parse_line(line: str | bytes) -> JsonObject | None:
    """The JSON object on this line, or None when it is not one (text, garbage, truncated)."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    stripped = line.strip()
    if not stripped.startswith("{"):
        return None
    try:
        value = json.loads(stripped)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def parse_lines(lines: list[str]) -> ParsedLines:
    parsed = ParsedLines()
    for line in lines:
        message = parse_line(line)
        if message is None:
            if line.strip():
                parsed.text.append(line.rstrip("\n"))
        else:
            parsed.messages.append(message)
    return parsed


def error_text(message: JsonObject) -> str:
    """The human text of a restic `error` or `exit_error` message.

    `error` nests its text as {"error": {"message": ...}} (flat in no version); 0.17.0 emitted an
    empty object, so fall back to whatever is there.
    """
    nested = message.get("error")
    text = ""
    if isinstance(nested, dict):
        text = str(nested.get("message") or "")
    elif isinstance(nested, str):
        text = nested
    if not text:
        text = str(message.get("message") or "")
    item = message.get("item")
    if item and text and str(item) not in text:
        text = f"{item}: {text}"
    return text or json.dumps(message, sort_keys=True)


def as_int(value: object) -> int:
    """restic omits zero-valued fields: a missing or odd value reads as 0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        # json accepts Infinity and NaN; neither is a count.
        return int(value) if math.isfinite(value) else 0
    return 0


def as_float(value: object) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond a float's range
            return 0.0
        return number if math.isfinite(number) else 0.0
    return 0.0


def as_str_list(value: object) -> list[str]:
    """A list of strings from a field restic documents as one (paths, tags): a missing or odd
    value reads as empty, a lone string as a one-item list, non-string items as their text."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(item) for item in value if item is not None]
    return []


def as_object(value: object) -> JsonObject:
    """A JSON object field, or {} when restic sent something else."""
    return value if isinstance(value, dict) else {}


def as_objects(value: object) -> list[JsonObject]:
    """The objects of a JSON array field; anything that is not an object is skipped."""
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]
