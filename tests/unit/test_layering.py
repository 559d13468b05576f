"""The house rules, checked on the code: which package may import which (cli/daemon → jobs →
engine/store/sources → config, nothing below jobs reaching up into daemon or cli), boto3 only in
store/, child processes only through the modules that own them, restic's environment only in
engine/, and no import cycles. Each rule is shown failing on a small bad tree below, so a rule
that silently stopped checking would fail too."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "drbackup"

# Which drbackup packages each package may import (besides itself). Explicit, like
# VERB_MODULES: a new edge is a decision made here, in review, not by accident.
ALLOWED: dict[str, set[str]] = {
    "(root)": set(),
    "__main__": {"cli"},
    "errors": set(),
    "logs": {"errors"},
    "config": {"errors"},
    "engine": {"config", "errors"},
    "store": {"config", "errors"},
    "state": {"errors"},
    "children": set(),  # the one door for child processes other than restic (#15 item 3)
    "sources": {"children", "config", "errors"},
    "verify": {"children", "config", "errors"},
    "media": {"config", "errors", "verify"},  # offline media (#19): layout, signed manifest,
    # read-back; pure (no restic, no state)
    "guard": {"errors"},  # pure signals and verdict (#16): reads files; no config, store, restic
    "fleet": {"config", "errors", "verify"},  # #20: the summary model, signing rules; pure
    # (root): drbackup.__version__, which the published fleet summary carries (#20)
    "jobs": {"(root)", "config", "engine", "errors", "fleet", "guard", "logs", "media", "sources",
             "state", "store", "verify"},
    "recovery": {"config", "engine", "errors", "jobs", "store", "verify"},  # kits: evidence key,
    # and plain restic's settings file (engine.environment) for the break-glass runbook
    "metrics": {"(root)", "config", "errors", "state"},
    "daemon": {"config", "engine", "errors", "jobs", "logs", "metrics", "state"},
    "cli": {"(root)", "config", "daemon", "engine", "errors", "fleet", "jobs", "logs", "media",
            "metrics", "recovery", "state", "store", "verify"},
}
# boto3/botocore: the one door to S3.
S3_LIBRARIES = {"boto3", "botocore"}
S3_DOOR = {"store"}
# The modules that start child processes: restic's door (engine/runner.py) and the one door
# for every other child (drbackup/children.py: dump tools, the dump guard, replays, drill
# servers; #15 item 3).
PROCESS_LIBRARIES = {"subprocess", "pty", "multiprocessing"}
PROCESS_MODULES = {"drbackup.engine.runner", "drbackup.children"}
# Import cycles still to break: may only shrink (#15 item 2 broke the last, drills/ a package).
KNOWN_CYCLES: set[frozenset[str]] = set()


@dataclass(frozen=True)
class Violation:
    rule: str
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.where}: {self.what}"


def _modules(package: Path) -> dict[str, Path]:
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path) -> Iterator[str]:
    """Every module an import statement names, also inside functions (a lazy import is still a
    dependency), except under `if TYPE_CHECKING:`."""
    is_package = path.name == "__init__.py"

    def walk(nodes: list[ast.stmt] | list[ast.AST]) -> Iterator[str]:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                yield from walk(list(node.orelse))
                continue
            if isinstance(node, ast.Import):
                yield from (alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")
                    base = base if is_package else base[:-1]
                    base = base[:len(base) - node.level + 1]
                    module = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    module = node.module or ""
                yield module
                yield from (f"{module}.{alias.name}" for alias in node.names)
            yield from walk(list(ast.iter_child_nodes(node)))

    yield from walk(list(ast.parse(path.read_text(encoding="utf-8")).body))


def _package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "(root)"


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(frozenset(component))
    return found


def check(package: Path, *, allowed: dict[str, set[str]], process_modules: set[str],
          known_cycles: set[frozenset[str]]) -> list[Violation]:
    modules = _modules(package)
    root = package.name
    graph: dict[str, set[str]] = {name: set() for name in modules}
    violations: list[Violation] = []
    for name, path in modules.items():
        mine = _package_of(name)
        for imported in set(_imports(name, path)):
            top = imported.split(".")[0]
            if top == root:
                if imported in modules and imported != name:
                    graph[name].add(imported)
                    theirs = _package_of(imported)
                    if theirs != mine and theirs not in allowed.get(mine, set()):
                        violations.append(Violation("layering", name, f"imports {imported}"))
            elif top in S3_LIBRARIES and mine not in S3_DOOR:
                violations.append(Violation("s3-door", name, f"imports {imported}"))
            elif top in PROCESS_LIBRARIES and name not in process_modules:
                violations.append(Violation("process-door", name, f"imports {imported}"))
        if mine != "engine" and "RESTIC_PASSWORD" in path.read_text(encoding="utf-8"):
            violations.append(Violation("restic-door", name, "sets restic's environment"))
    for cycle in _cycles(graph):
        if cycle not in known_cycles:
            violations.append(Violation("cycle", " ↔ ".join(sorted(cycle)), "import cycle"))
    return violations


def test_drbackup_keeps_the_house_rules() -> None:
    violations = check(PACKAGE, allowed=ALLOWED, process_modules=PROCESS_MODULES,
                       known_cycles=KNOWN_CYCLES)
    assert not violations, "\n".join(map(str, violations))


def test_the_known_exceptions_are_still_needed() -> None:
    """Once a pending exception is gone from the code, it must go from the lists too."""
    modules = _modules(PACKAGE)
    for name in PROCESS_MODULES:
        assert any(imported.split(".")[0] in PROCESS_LIBRARIES
                   for imported in _imports(name, modules[name])), f"{name} starts no process"
    cycles = _cycles({name: {i for i in _imports(name, path) if i in modules and i != name}
                      for name, path in modules.items()})
    assert set(cycles) >= KNOWN_CYCLES


@pytest.fixture
def bad_tree(tmp_path: Path) -> Path:
    """A small package that breaks every rule once."""
    pkg = tmp_path / "drbackup"
    files = {
        "__init__.py": "",
        "config/__init__.py": "",
        "config/models.py": "from drbackup.daemon import loop\n",          # layering
        "daemon/__init__.py": "",
        "daemon/loop.py": "",
        "jobs/__init__.py": "",
        "jobs/a.py": "def f() -> None:\n    from drbackup.jobs import b\n",   # cycle, lazily
        "jobs/b.py": "from drbackup.jobs import a\nimport boto3\n",          # s3-door
        "sources/__init__.py": "",
        "sources/x.py": "import subprocess\nENV = {'RESTIC_PASSWORD_FILE': ''}\n",
        "engine/__init__.py": "",
        "engine/ok.py": "import subprocess\nENV = {'RESTIC_PASSWORD_FILE': ''}\n",
        "state/__init__.py": "",
        "state/typed.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                           "    from drbackup.cli import main\n"),              # allowed
    }
    for relative, text in files.items():
        (pkg / relative).parent.mkdir(parents=True, exist_ok=True)
        (pkg / relative).write_text(text)
    return pkg


def test_each_rule_fails_on_a_tree_that_breaks_it(bad_tree: Path) -> None:
    violations = {(v.rule, v.where) for v in check(
        bad_tree, allowed=ALLOWED, process_modules={"drbackup.engine.ok"}, known_cycles=set())}
    assert violations == {
        ("layering", "drbackup.config.models"),
        ("s3-door", "drbackup.jobs.b"),
        ("process-door", "drbackup.sources.x"),
        ("restic-door", "drbackup.sources.x"),
        ("cycle", "drbackup.jobs.a ↔ drbackup.jobs.b"),
    }
