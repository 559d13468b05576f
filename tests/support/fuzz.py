"""Hypothesis settings shared by the fuzz tests: a modest, derandomised run in `make test`, a
long random one in `make test-long` (DRBACKUP_LONG=1), and strategies for JSON-like values."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

LONG = os.environ.get("DRBACKUP_LONG") == "1"
LONG_FACTOR = 25


def fuzz_settings(examples: int, *, long: bool = False) -> settings:
    """`examples` in the fast suite; LONG_FACTOR times more, random, in the long one."""
    if long:
        return settings(max_examples=examples * LONG_FACTOR, deadline=None, database=None,
                        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    return settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


TestFunction = Callable[[], None]


def fuzz_pair(body: Callable[..., None], *strategies: st.SearchStrategy[Any],
              examples: int) -> tuple[TestFunction, TestFunction]:
    """Two tests from one property: the fast one for `make test` and a slow-marked long one
    for `make test-long`. Assign them to names starting with test_."""
    fast: TestFunction = fuzz_settings(examples)(given(*strategies)(body))
    slow: TestFunction = pytest.mark.slow(
        fuzz_settings(examples, long=True)(given(*strategies)(body)))
    return fast, slow


# JSON values as restic could (mis)send them.
json_scalars: st.SearchStrategy[Any] = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=40))


def json_values(keys: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Any]:
    key_strategy = keys if keys is not None else st.text(max_size=12)
    return st.recursive(
        json_scalars,
        lambda children: st.lists(children, max_size=4)
        | st.dictionaries(key_strategy, children, max_size=6),
        max_leaves=20)
