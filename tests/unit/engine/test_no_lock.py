"""A repository opened without restic's lock (RepoTarget.no_lock): a medium mounted read-only
(#19), where restic could not write its lock file. The whole argv asserted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from drbackup.engine import ResticError
from drbackup.engine import invoke as invoke_module
from drbackup.engine.invoke import ResticSettings
from drbackup.engine.jsonlines import parse_lines
from drbackup.engine.models import RepoTarget
from drbackup.engine.restic import Restic
from drbackup.engine.runner import ProcessResult

MEDIUM = RepoTarget("/media/disk/agencies/a/repo", Path("/pw"), label="a@medium", no_lock=True)
STORE = RepoTarget("/srv/repos/a", Path("/pw"), label="a@local")


def _run(calls: list[list[str]]) -> Any:
    def run(argv: Sequence[str], env: Mapping[str, str], **_: Any) -> ProcessResult:
        calls.append(list(argv))
        summary = '{"message_type":"summary","num_errors":0}'
        return ProcessResult(list(argv), 0, parse_lines([summary]), parse_lines([]), 0.01,
                             False, False)
    return run


def test_check_and_copy_read_the_medium_without_its_lock() -> None:
    calls: list[list[str]] = []
    restic = Restic(ResticSettings(binary="restic"))
    with mock.patch.object(invoke_module, "run_process", _run(calls)):
        assert restic.check(MEDIUM, read_data=True).ok
        restic.copy(MEDIUM, STORE)
        restic.check(STORE)
    assert calls == [["restic", "--json", "--no-lock", "check", "--read-data"],
                     ["restic", "--no-lock", "copy"],  # the --from-repo side only (restic)
                     ["restic", "--json", "check"]]


def test_copy_never_writes_to_a_repository_opened_without_its_lock() -> None:
    with pytest.raises(ResticError, match="without its lock"):
        Restic(ResticSettings(binary="restic")).copy(STORE, MEDIUM)
