"""Fuzzing the config loader: whatever the text, parse_config returns a Config or raises
ConfigInvalid whose every problem is one line naming where it is; never another exception."""

from __future__ import annotations

import copy
import datetime as dt
import math
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import strategies as st

from drbackup.config import ConfigInvalid, parse_config
from drbackup.config.models import Config
from tests.support.fuzz import fuzz_pair

CONFIG_PATH = Path("/etc/drbackup/fuzz.toml")
# Words of the real schema, so random structures often hit real keys with wrong values.
SCHEMA_WORDS = [
    "daemon", "stores", "agencies", "sources", "state_dir", "cache_dir", "metrics_listen",
    "restic", "hostname", "max_concurrent_jobs", "restic_timeout", "stop_grace", "url", "path",
    "credentials_file", "region", "create_bucket", "id", "password_file", "store", "replicas",
    "rpo", "rto", "kind", "paths", "exclude", "one_file_system", "watch", "debounce",
    "max_delay", "schedule", "timeout", "local", "offsite", "directory",
]

BASE: dict[str, Any] = {
    "daemon": {"state_dir": "/var/lib/drbackup", "cache_dir": "/var/cache/drbackup",
               "restic_timeout": "6h", "max_concurrent_jobs": 2, "hostname": "records-01"},
    "stores": {
        "offsite": {"url": "s3:https://s3.example.gov/bucket",
                    "credentials_file": "/etc/drbackup/offsite.credentials"},
        "dr-site": {"path": "/srv/dr"},
    },
    "agencies": [
        {"id": "planning", "password_file": "/etc/drbackup/planning.password",
         "store": "offsite", "replicas": ["dr-site"], "rpo": "1h", "rto": "4h",
         "sources": [{"id": "documents", "kind": "directory", "paths": ["/srv/planning"],
                      "exclude": ["*.tmp"], "debounce": "10s", "schedule": "hourly"}]},
        {"id": "permits", "password_file": "/etc/drbackup/permits.password",
         "sources": [{"id": "files", "kind": "directory", "paths": ["/srv/permits"]}]},
    ],
}

_int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
toml_scalars: st.SearchStrategy[Any] = (
    st.booleans() | _int64 | st.floats() | st.text(max_size=30)
    | st.sampled_from(["1h", "0s", "-5m", "10y", "99999999999999999999h", "nan", "",
                       "/abs/path", "relative/path", "s3:http://x/b", "directory",
                       "UPPER", "a" * 70, "/tmp/\x00nul", "${NOT_SET_ANYWHERE}/x"])
    | st.dates() | st.times() | st.datetimes(min_value=dt.datetime(1, 1, 2))  # noqa: DTZ001
)
keys = st.sampled_from(SCHEMA_WORDS) | st.text(min_size=1, max_size=10)
toml_values: st.SearchStrategy[Any] = st.recursive(
    toml_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(keys, children, max_size=5),
    max_leaves=15)


def assert_clean_outcome(text: str, *, check_files: bool = False) -> Config | None:
    """The property: a Config, or ConfigInvalid with one-line problems that say where."""
    try:
        return parse_config(text, CONFIG_PATH, check_files=check_files)
    except ConfigInvalid as exc:
        assert exc.problems, "ConfigInvalid without problems"
        assert "\n" not in str(exc) and "\n" not in exc.one_line()
        assert str(CONFIG_PATH) in exc.message
        for problem in exc.problems:
            line = str(problem)
            assert line and "\n" not in line and "\r" not in line
            located = bool(problem.location) or line.startswith(
                ("not valid TOML", "values are nested", "agencies["))
            assert located, f"problem names no key path: {line!r}"
        return None


def _random_text(text: str) -> None:
    assert_clean_outcome(text)


test_random_text, test_random_text_long = fuzz_pair(
    _random_text,
    st.text(alphabet=st.characters(codec="utf-8"), max_size=200)
    | st.lists(st.sampled_from(["[daemon]", "[[agencies]]", "[stores.x]", 'id = "a"', "x = 1",
                                "paths = [", "]", '"', "= =", "a.b.c = 1", "[a", "#", "\\"]),
               max_size=12).map("\n".join),
    examples=200)


def _random_structure(document: dict[str, Any]) -> None:
    assert_clean_outcome(tomli_w.dumps(document))


test_random_structure, test_random_structure_long = fuzz_pair(
    _random_structure,
    st.dictionaries(st.sampled_from(["daemon", "stores", "agencies"]) | keys, toml_values,
                    max_size=4),
    examples=150)


def _leaves(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in the document (tables, arrays and scalars)."""
    found: list[tuple[Any, ...]] = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _leaves(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _leaves(value, (*prefix, index))
    return found


PATHS = _leaves(BASE)


def _mutate(document: dict[str, Any], path: tuple[Any, ...], action: str, value: Any) -> None:
    parent: Any = document
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "replace":
        parent[last] = value
    elif action == "delete":
        del parent[last]
    elif action == "add-unknown" and isinstance(parent, dict):
        parent[f"unknown_{last}"] = value


def _mutated_base(path: tuple[Any, ...], action: str, value: Any) -> None:
    document = copy.deepcopy(BASE)
    _mutate(document, path, action, value)
    config = assert_clean_outcome(tomli_w.dumps(document))
    if action == "add-unknown" and isinstance(path[-1], str):
        assert config is None, "an unknown key must never be accepted"


test_mutated_valid_config, test_mutated_valid_config_long = fuzz_pair(
    _mutated_base, st.sampled_from(PATHS), st.sampled_from(["replace", "delete", "add-unknown"]),
    toml_values, examples=300)


def test_base_config_is_valid() -> None:
    """The fuzzers mutate a valid config: it must start valid."""
    config = parse_config(tomli_w.dumps(BASE), CONFIG_PATH, check_files=False)
    assert [a.id for a in config.agencies] == ["planning", "permits"]


def test_known_crashers_give_config_errors(tmp_path: Path) -> None:
    """Inputs that crashed the loader before it was fuzzed (kept as regression cases)."""
    texts = [
        "a = " + "[" * 3000 + "]" * 3000,                      # RecursionError in tomllib
        "[daemon]\nrestic_timeout = 1e300\n",                    # OverflowError in timedelta
        '[daemon]\nrestic_timeout = "99999999999999999999999h"\n',
        "[daemon]\nstop_grace = nan\n",
        "[daemon]\nstop_grace = inf\n",
        f"[daemon]\nrestic_timeout = {2**63 - 1}\n",
    ]
    for text in texts:
        assert assert_clean_outcome(text) is None, text
    secret_paths = ["/tmp/\x00nul", "/etc/passwd/below-a-file", "/" + "n" * 5000,
                    str(tmp_path)]
    for secret in secret_paths:
        document = copy.deepcopy(BASE)
        document["agencies"][0]["password_file"] = secret
        with_files = tomli_w.dumps(document)
        assert assert_clean_outcome(with_files, check_files=True) is None, secret
    assert math.isnan(float("nan"))  # TOML's nan reaches the validators as a float
