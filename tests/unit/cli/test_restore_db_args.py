"""restore-db's arguments: `--database` given twice is refused, not silently narrowed to the last
one (issue 17 item 4)."""

from __future__ import annotations

import pytest

from drbackup.cli.main import build_parser, main
from drbackup.errors import ExitCode

BASE = ["restore-db", "--agency", "records", "--source", "db", "--into", "restored"]


def test_database_given_twice_is_refused_with_one_line(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    with pytest.raises(SystemExit) as caught:
        main([*BASE, "--database", "permits", "--database", "payroll"])
    assert caught.value.code == ExitCode.USAGE
    errors = [line for line in capsys.readouterr().err.splitlines()
              if line.startswith("drbackup: error:")]
    assert len(errors) == 1
    assert "--database" in errors[0] and "one restore-db per database" in errors[0]


def test_database_given_once_is_kept() -> None:
    args = build_parser("restore-db").parse_args([*BASE, "--database", "permits"])
    assert args.database == "permits"
    assert build_parser("restore-db").parse_args(BASE).database is None
