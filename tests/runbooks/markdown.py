"""Reading runbooks: their fenced shell blocks, which of them CI executes, and their commands
with comments removed (so the zh-CN and en versions can be compared)."""

from __future__ import annotations

import re
from collections.abc import Collection
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
    # The backticked fragments of the first sentence of the "Expected:" paragraph after the
    # block: what the runbook tells the reader the commands print.
    expected: tuple[str, ...] = ()

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
                           text[:match.start()].count("\n") + 1, requires,
                           _expected(text[match.end():])))
    return found


_EXPECTED = re.compile(r"^\s*(?:Expected:|预期：)(?P<para>.*?)(?:\n\s*\n|```|$)", re.S)


def _expected(after: str) -> tuple[str, ...]:
    """The fragments the "Expected:" paragraph right after a block quotes, first sentence."""
    match = _EXPECTED.match(after.lstrip("\n"))
    if match is None:
        return ()
    para = " ".join(match.group("para").split())
    sentence, inside = [], False
    for index, char in enumerate(para):
        sentence.append(char)
        if char == "`":
            inside = not inside
        elif char in ".。" and not inside and (index + 1 == len(para) or para[index + 1] == " "
                                               or char == "。"):
            break
    return tuple(re.findall(r"`([^`]+)`", "".join(sentence)))


_PLACEHOLDER = re.compile(r"<[^<>]+>")
_UNIT = re.compile(r"\b[KMGT]iB\b")
_NUMBER = re.compile(r"\b[NMKXSn]\b|\b0\.x\.y\b")


def checkable(fragment: str, verbs: Collection[str] = ()) -> bool:
    """Output a command prints (several words, or a placeholder) — not a word, a file name, a
    path with a shell variable, or a drbackup command the sentence names."""
    words = fragment.split()
    if "$" in fragment or (len(words) >= 2 and words[0] == "drbackup" and words[1] in verbs):
        return False
    return len(words) >= 2 or bool(_PLACEHOLDER.search(fragment))


def as_pattern(fragment: str) -> re.Pattern[str]:
    """The fragment as a regex: <placeholder> any text, ... any text, N/M/K/X/S a number, a
    size unit any unit, runs of spaces any whitespace."""
    out = []
    position = 0
    tokens = re.compile(r"<[^<>]+>|\.\.\.|\b[KMGT]iB\b|\b[NMKXSn]\b|\b0\.x\.y\b|\s+")
    for token in tokens.finditer(fragment):
        out.append(re.escape(fragment[position:token.start()]))
        text = token.group()
        if text.startswith("<") or text == "...":
            out.append(".*?")
        elif _UNIT.fullmatch(text):
            out.append("(?:[KMGT]i)?B")
        elif _NUMBER.fullmatch(text):
            out.append(r"[\w.,:/-]+")
        else:
            out.append(r"\s*")
        position = token.end()
    out.append(re.escape(fragment[position:]))
    return re.compile("".join(out))


def runbook_files(language: str) -> list[Path]:
    root = RUNBOOKS / language
    return sorted(root.rglob("*.md"))


def relative(path: Path, language: str) -> str:
    return str(path.relative_to(RUNBOOKS / language))
