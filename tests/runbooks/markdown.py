"""Reading runbooks: their fenced shell blocks, which of them CI executes, and their commands
with comments removed (so the zh-CN and en versions can be compared)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

RUNBOOKS = Path(__file__).resolve().parents[2] / "runbooks"
LANGUAGES = ("en", "zh-CN")
MARKER = "# runbook-test"
HTML_MARKER = "<!-- runbook-test -->"
UNTESTED = "# runbook-untested"
# Run only once the CLI has that verb (another issue's work): "# runbook-test-if-verb: replicate"
IF_VERB = "# runbook-test-if-verb:"
_FENCE = re.compile(r"^(?P<indent> *)```bash\n(?P<body>.*?)^(?P=indent)```$", re.S | re.M)


@dataclass(frozen=True)
class Block:
    code: str
    executable: bool
    untested: bool
    line: int
    requires: str | None = None  # a verb the block needs before it is executed

    def runs_with(self, verbs: set[str]) -> bool:
        return self.executable or (self.requires is not None and self.requires in verbs)

    def commands(self) -> list[str]:
        """Lines without comments and blank lines (comments may be translated)."""
        out = []
        for raw in self.code.splitlines():
            line = re.sub(r"\s{2,}#.*$", "", raw).rstrip()
            if line.strip() and not line.lstrip().startswith("#"):
                out.append(line)
        return out


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        indent = len(match.group("indent"))
        lines = [line[indent:] if line[:indent].strip() == "" else line
                 for line in match.group("body").splitlines()]
        code = "\n".join(lines)
        first = lines[0].strip() if lines else ""
        before = text[:match.start()].rstrip().splitlines()
        html = bool(before) and before[-1].strip() == HTML_MARKER
        requires = first.removeprefix(IF_VERB).strip() if first.startswith(IF_VERB) else None
        found.append(Block(code, first == MARKER or html, first.startswith(UNTESTED),
                           text[:match.start()].count("\n") + 1, requires))
    return found


def runbook_files(language: str) -> list[Path]:
    root = RUNBOOKS / language
    return sorted(root.rglob("*.md"))


def relative(path: Path, language: str) -> str:
    return str(path.relative_to(RUNBOOKS / language))
