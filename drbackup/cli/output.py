"""One way to report results: the same objects rendered for people or, with --json, machines."""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any, TextIO


def jsonable(value: Any) -> Any:
    """Dataclasses, datetimes, paths and enums as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not f.name.startswith("_")}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


class Output:
    def __init__(self, json_mode: bool, stream: TextIO | None = None, quiet: bool = False):
        self.json_mode = json_mode
        self.stream = stream or sys.stdout
        self.quiet = quiet

    def error(self, text: str) -> None:
        """One `drbackup: error: ...` line on stderr (in JSON mode too: it is for the reader),
        for a failure the command reports and goes on after."""
        print(f"drbackup: error: {text}", file=sys.stderr, flush=True)

    def warning(self, text: str) -> None:
        """One `drbackup: warning: ...` line on stderr (in JSON mode too): the command goes on."""
        print(f"drbackup: warning: {text}", file=sys.stderr, flush=True)

    def line(self, text: str = "") -> None:
        """A line for people; suppressed in JSON mode."""
        if not self.json_mode and not self.quiet:
            print(text, file=self.stream, flush=True)

    def result(self, value: Any, human: str | None = None) -> None:
        """The command's result: JSON in JSON mode, else the human text (when given)."""
        if self.json_mode:
            print(json.dumps(jsonable(value), ensure_ascii=False, sort_keys=True),
                  file=self.stream, flush=True)
        elif human is not None:
            print(human, file=self.stream, flush=True)

    def table(self, headers: list[str], rows: list[list[str]]) -> None:
        if self.json_mode:
            return
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
                  for i, h in enumerate(headers)]
        print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
              file=self.stream)
        for row in rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(),
                  file=self.stream)
        self.stream.flush()
