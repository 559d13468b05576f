"""Fuzz strand for the guard's content signal (#16): random file names (any extension the
signature table knows, ransomware extensions, odd characters), random contents (structured,
random, signatures spliced in, encrypted in blocks) and random budgets. On every case `look`
returns, never raises, reads at most the budget, and a file it did not read says why."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import strategies as st

from drbackup.guard.content import DEFAULT_BUDGET, formats, look
from tests.support import formats as f
from tests.support.fuzz import fuzz_pair

_EXTENSIONS = [*sorted(formats()), "locked", "enc", "bin", "", "DOCX", "Pdf"]
_stems = st.text(st.characters(blacklist_characters="/\0", blacklist_categories=["Cs"]),
                 min_size=1, max_size=30).filter(lambda s: s not in {".", ".."})
names = st.builds(lambda stem, exts: ".".join([stem, *exts])[:200], _stems,
                  st.lists(st.sampled_from(_EXTENSIONS), max_size=3))

_signatures = [bytes.fromhex(h) for h in ("504b0304", "255044462d", "89504e470d0a1a0a",
                                          "ffd8ff", "1f8b", "53514c69746520666f726d6174203300",
                                          "0000001866747970")]
contents = st.one_of(
    st.binary(max_size=20000),
    st.builds(lambda size, seed: f.noise(size, seed), st.integers(0, 600_000), st.integers(0, 9)),
    st.builds(lambda rows: f.csv_text(rows), st.integers(0, 20000)),
    st.builds(lambda sig, size: sig + f.noise(size), st.sampled_from(_signatures),
              st.integers(0, 400_000)),
    st.builds(lambda rows, every: f.encrypt_every(f.csv_text(rows), every),
              st.integers(0, 30000), st.integers(1, 6)),
)
budgets = st.one_of(st.just(DEFAULT_BUDGET), st.integers(0, 600_000))


def _never_raises_never_overreads(name: str, data: bytes, budget: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        try:
            path = Path(scratch) / name
            path.write_bytes(data)
        except OSError:  # a name the file system refuses (too long in bytes, ...)
            path = Path(scratch) / "fallback.bin"
            path.write_bytes(data)
        result = look(path, budget=budget)
        assert result.readable, result.reasons
        assert result.size == len(data)
        assert result.bytes_read <= min(budget, len(data))
        assert result.reasons and all(isinstance(r, str) and r for r in result.reasons)
        assert 0 <= result.random_windows <= result.windows == len(result.chi_square)
        assert result.kind in {"ok", "encrypted", "unknown"}
        if result.magic_mismatch:
            assert result.kind == "encrypted"
        os.unlink(path)
        gone = look(path, budget=budget)
        assert not gone.readable and gone.bytes_read == 0 and gone.reasons


test_look_never_raises, test_look_never_raises_long = fuzz_pair(
    _never_raises_never_overreads, names, contents, budgets, examples=100)
