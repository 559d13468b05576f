"""restore-db --into: a target carrying a password is refused in one line before anything runs
(issue 17 item 5), with the same check the config applies to a source's dsn."""

from __future__ import annotations

from typing import Any

import pytest

from drbackup.config.models.sources import dsn_has_password
from drbackup.errors import ExitCode, UsageError
from drbackup.jobs.restore_db import refuse_secret_target

SECRET_TARGETS = [
    "postgresql://user:s3cret@db.example:5432/permits",
    "postgres://user:s3cret@db.example/permits",
    "mysql://user:s3cret@db.example/permits",
    "mariadb://user:s3cret@db.example/permits",
    "host=db.example dbname=permits password=s3cret",
    "host=db.example password = 's3 cret' dbname=permits",
    "postgresql://db.example/permits?user=u&password=s3cret",
]
PLAIN_TARGETS = [
    "permits_restored",
    "postgresql://user@db.example:5432/permits",
    "host=db.example dbname=permits user=u passfile=/etc/drbackup/pgpass",
    "/var/lib/restore/permits.sqlite",
]


@pytest.mark.parametrize("target", SECRET_TARGETS)
def test_a_password_in_the_target_is_refused_in_one_line(target: str) -> None:
    assert dsn_has_password(target)
    with pytest.raises(UsageError) as caught:
        refuse_secret_target(target)
    error = caught.value
    assert error.exit_code == ExitCode.USAGE
    line = error.one_line()
    assert "\n" not in line and "s3cret" not in line and "s3 cret" not in line
    assert "password" in line and error.hint


@pytest.mark.parametrize("target", PLAIN_TARGETS)
def test_targets_without_password_pass(target: str) -> None:
    assert not dsn_has_password(target)
    refuse_secret_target(target)


def test_refused_before_anything_runs() -> None:
    """No restic, no state: the runtime is never touched."""
    from drbackup.jobs.restore_db import restore_database

    class Untouchable:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"runtime.{name} used before the target was checked")

    class Agency:
        def source(self, _name: str) -> Any:
            from drbackup.config.models import PostgresSource

            return PostgresSource(id="db", kind="postgres", dsn="postgresql://u@h/permits")

    with pytest.raises(UsageError):
        restore_database(Untouchable(), Agency(), "db",  # type: ignore[arg-type]
                         into="postgresql://user:s3cret@h/permits")
