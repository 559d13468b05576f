"""Fuzz strand for drop folders (#14): folders built from a grammar of hostile names and entry
kinds (tests/support/hostile.py). On every case: only the honest regular files are selected,
each streams exactly its own bytes, no byte of another agency's secret is ever read, nothing
disappears silently (every other entry is skipped with its reason), and a file swapped for a
link after it was selected is refused when read."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from hypothesis import strategies as st

from drbackup.config.models import DumpdirSource
from drbackup.sources.dumpdir import apply_caps, name_refusal, select_files, stream_file
from tests.support.fuzz import fuzz_pair
from tests.support.hostile import Entry, build, entries, swap_for_link

SECRET = b"ANOTHER-AGENCY-SECRET-5d1e"


def _drop_folder_invariants(items: list[Entry], swap: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        secret = root / "health" / "health.password"
        secret.parent.mkdir()
        secret.write_bytes(SECRET)
        folder = root / "drops"
        folder.mkdir()
        honest = build(folder, items, secret)
        source = DumpdirSource.model_validate({"id": "drops", "kind": "dumpdir",
                                               "path": str(folder), "pattern": "*",
                                               "marker": True, "max_bytes": "1GiB"})
        selection = apply_caps(source, select_files(source))

        acceptable = {name for name in honest if name_refusal(name) is None}
        chosen = {f.path.name for f in selection.files}
        assert chosen | set(selection.deferred) == acceptable
        skipped = {s.name for s in selection.skipped}
        assert skipped == {e.name for e in items} - acceptable  # nothing silently dropped
        assert all(s.reason for s in selection.skipped)

        swapped = None
        if selection.files and swap:
            swapped = selection.files[swap % len(selection.files)]
            swap_for_link(swapped.path, secret)
        for item in selection.files:
            out, err = io.BytesIO(), io.StringIO()
            code = stream_file(item.path, item, out, err)
            assert SECRET not in out.getvalue()
            if item is swapped:
                assert code == 1 and out.getvalue() == b"", err.getvalue()
            else:
                assert code == 0, err.getvalue()
                assert out.getvalue() == honest[item.path.name]


test_hostile_drop_folders, test_hostile_drop_folders_long = fuzz_pair(
    _drop_folder_invariants, entries, st.integers(min_value=0, max_value=3), examples=150)
