"""restic copy opens two repositories in one process with one set of AWS_* variables: the
environment drbackup gives it, and the refusal when two S3 stores need different keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from drbackup.engine import IncompatibleCredentials, RepoTarget
from drbackup.engine.restic import shared_backend_env
from drbackup.errors import ExitCode


def s3(label: str, key: str, secret: str, region: str = "us-east-1") -> RepoTarget:
    return RepoTarget(f"s3:http://h/{label}", Path("/pw"), label=label, backend_env=(
        ("AWS_ACCESS_KEY_ID", key), ("AWS_SECRET_ACCESS_KEY", secret),
        ("AWS_DEFAULT_REGION", region)))


LOCAL = RepoTarget("/srv/repo", Path("/pw"), label="local")


def test_same_key_on_both_sides_needs_nothing_extra() -> None:
    assert shared_backend_env(s3("a", "k", "s"), s3("b", "k", "s", "eu-west-1")) == {}


def test_local_to_s3_uses_the_destination_environment() -> None:
    assert shared_backend_env(LOCAL, s3("b", "k", "s")) == {}


def test_s3_to_local_carries_the_source_credentials() -> None:
    env = shared_backend_env(s3("a", "k", "s"), LOCAL)
    assert env["AWS_ACCESS_KEY_ID"] == "k" and env["AWS_SECRET_ACCESS_KEY"] == "s"


def test_two_s3_stores_with_different_keys_are_refused_without_leaking_secrets() -> None:
    with pytest.raises(IncompatibleCredentials) as refused:
        shared_backend_env(s3("a", "k1", "secret-one"), s3("b", "k2", "secret-two"))
    assert refused.value.exit_code == ExitCode.CONFIG
    text = refused.value.one_line()
    assert "one set of S3 credentials" in text
    assert "secret-one" not in text and "secret-two" not in text and "k1" not in text
