"""DSN handling of PostgreSQL sources: which database a DSN names, and the same connection to
another database."""

from __future__ import annotations

import pytest

from drbackup.sources.postgres import _pgpass_escape, dsn_database, dsn_with_database


@pytest.mark.parametrize(("dsn", "database"), [
    ("postgresql://backup@db.internal:5432/permits", "permits"),
    ("postgres://backup@db.internal/with%20space", "with space"),
    ("postgresql://backup@db.internal", None),
    ("host=db user=backup dbname=permits", "permits"),
    ("host=db dbname='a b' user=x", "a b"),
    ("service=permits", None),
])
def test_dsn_database(dsn: str, database: str | None) -> None:
    assert dsn_database(dsn) == database


def test_dsn_with_database_keeps_the_connection() -> None:
    uri = dsn_with_database("postgresql://backup@db:5433/permits?sslmode=require", "other db")
    assert uri == "postgresql://backup@db:5433/other%20db?sslmode=require"
    kv = dsn_with_database("host=db user=backup dbname=permits", "it's")
    assert kv == "host=db user=backup dbname=permits dbname='it\\'s'"
    assert dsn_database(kv) == "it's"


def test_pgpass_escapes_colons_and_backslashes() -> None:
    assert _pgpass_escape("a:b\\c") == "a\\:b\\\\c"
