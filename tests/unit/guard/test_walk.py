"""The guard's walk of a source (#16 item 5): it names the files restic backs up. restic's
exclude patterns are matched as restic matches them (any run of consecutive components, `/`
anchored at the root, `**` any depth, Go's glob syntax, `!` includes again; the same cases
against real restic: tests/integration/test_guard_walk.py), links are listed and never
followed, and a directory that cannot be listed is handed back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from drbackup.guard.walk import Excludes, Walk, go_glob


def _tree(root: Path) -> None:
    for rel in ["a.txt", "b.tmp", "docs/c.docx", "docs/.cache/x.bin", "docs/sub/d.tmp",
                "docs/sub/deep/e.txt", "build/out.o", "srv/keep/f.txt", "srv/other/g.txt",
                "[x]/h.txt", "sp ace/i.txt"]:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rel.encode())


def _walked(root: Path, patterns: list[str]) -> set[str]:
    walk = Walk([str(root)], Excludes.of(patterns))
    return {os.path.relpath(path, root) for path, _ in walk.files()}


ALL = {"a.txt", "b.tmp", "docs/c.docx", "docs/.cache/x.bin", "docs/sub/d.tmp",
       "docs/sub/deep/e.txt", "build/out.o", "srv/keep/f.txt", "srv/other/g.txt",
       "[x]/h.txt", "sp ace/i.txt"}


@pytest.mark.parametrize(("patterns", "gone"), [
    ([], set()),
    (["*.tmp"], {"b.tmp", "docs/sub/d.tmp"}),
    ([".cache"], {"docs/.cache/x.bin"}),  # a name anywhere: the directory and all below
    (["docs"], {"docs/c.docx", "docs/.cache/x.bin", "docs/sub/d.tmp", "docs/sub/deep/e.txt"}),
    (["sub/deep"], {"docs/sub/deep/e.txt"}),  # consecutive components, anywhere
    (["docs/deep"], set()),  # not consecutive
    (["{root}/b.tmp"], {"b.tmp"}),  # absolute: from the root only
    (["/b.tmp"], set()),
    (["{root}/docs/**/*.tmp"], {"docs/sub/d.tmp"}),
    (["**/e.txt"], {"docs/sub/deep/e.txt"}),
    (["{root}/docs/**"], {"docs/c.docx", "docs/.cache/x.bin", "docs/sub/d.tmp",
                          "docs/sub/deep/e.txt"}),
    (["[ab].t?t"], {"a.txt"}),
    (["[^a].tmp"], {"b.tmp", "docs/sub/d.tmp"}),  # Go's negated class
    (["\\[x\\]"], {"[x]/h.txt"}),  # Go's escape
    (["sp ace/"], {"sp ace/i.txt"}),  # restic cleans the pattern
    (["srv/*", "!srv/keep"], {"srv/other/g.txt"}),  # the last match decides
    (["srv", "!srv/keep"], {"srv/keep/f.txt", "srv/other/g.txt"}),  # srv is not entered
    (["d*/s*"], {"docs/sub/d.tmp", "docs/sub/deep/e.txt"}),
    (["docs/*/deep"], {"docs/sub/deep/e.txt"}),
    (["", "."], set()),
])
def test_restic_exclude_patterns(tmp_path: Path, patterns: list[str], gone: set[str]) -> None:
    root = tmp_path / "share"
    _tree(root)
    walked = _walked(root, [p.replace("{root}", str(root)) for p in patterns])
    assert walked == ALL - gone


def test_go_glob_components() -> None:
    assert go_glob("*.txt") == r"[^/]*\.txt"
    assert go_glob("a?c") == "a[^/]c"
    assert go_glob("[a-c]x") == "[a-c]x"
    assert go_glob("[]a]") == r"[\]a]"  # "]" first in a class is a member
    assert go_glob("[unclosed") == r"\[unclosed"


def test_links_are_listed_not_followed_and_fifos_listed(tmp_path: Path) -> None:
    root = tmp_path / "share"
    (root / "d").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"x" * 100)
    (root / "d" / "link-dir").symlink_to(outside)
    (root / "d" / "link-file").symlink_to(outside / "secret.txt")
    os.mkfifo(root / "d" / "pipe")
    walked = dict(Walk([str(root)]).files())
    assert set(walked) == {str(root / "d" / n) for n in ("link-dir", "link-file", "pipe")}
    assert all(not os.path.samestat(st, os.stat(outside / "secret.txt"))
               for st in walked.values())


def test_a_file_root_and_duplicate_roots(tmp_path: Path) -> None:
    root = tmp_path / "share"
    _tree(root)
    walk = Walk([str(root / "a.txt"), str(root / "srv"), str(root / "srv")])
    assert sorted(os.path.relpath(p, root) for p, _ in walk.files()) == [
        "a.txt", "srv/keep/f.txt", "srv/other/g.txt"]


def test_unlistable_directories_are_handed_back(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "share"
    _tree(root)
    locked = str(root / "docs")
    real = os.open

    def refusing_open(path: str, flags: int, *args: object, **kwargs: object) -> int:
        if str(path) == locked:
            raise PermissionError(13, "Permission denied", path)
        return real(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refusing_open)
    walk = Walk([str(root)])
    walked = {os.path.relpath(p, root) for p, _ in walk.files()}
    assert walk.unlisted == [locked]
    assert not any(p.startswith("docs/") for p in walked) and "a.txt" in walked
