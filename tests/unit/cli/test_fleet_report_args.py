"""`fleet report` arguments and a store that cannot be read: --since as a time or a duration,
an empty keyring refused, an unreachable store named in the report (never silent partial data)
with its exit code kept."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytest

from drbackup.cli.commands.fleet import _since, report_cmd
from drbackup.cli.context import CliContext
from drbackup.cli.output import Output
from drbackup.config.models import Config, DaemonConfig, StoreConfig
from drbackup.errors import ExitCode, NotFoundError, UsageError
from drbackup.fleet.trust import Keyring
from drbackup.jobs.fleet_report import build_fleet_report
from drbackup.jobs.runtime import Runtime
from drbackup.verify.evidence import EvidenceKey, public_pem


def test_since_reads_a_duration_or_a_zoned_time() -> None:
    assert abs((_since("6h") or 0) - (time.time() - 6 * 3600)) < 5
    assert _since("2026-12-07T08:00Z") == 1796630400.0
    assert _since(None) is None
    for bad in ("yesterday", "2026-12-07T08:00"):
        with pytest.raises(UsageError):
            _since(bad)


def test_an_empty_keyring_is_refused(tmp_path: Path) -> None:
    args = argparse.Namespace(config=None, keyring=tmp_path, since=None, expect=None,
                              store=None)
    with pytest.raises(NotFoundError, match="holds no"):
        report_cmd(CliContext(args, Output(json_mode=True)))


def test_an_unreachable_store_is_named_and_keeps_its_exit_code(tmp_path: Path) -> None:
    credentials = tmp_path / "read.credentials"
    credentials.write_text("[default]\naws_access_key_id = a\naws_secret_access_key = b\n")
    credentials.chmod(0o600)
    config = Config(daemon=DaemonConfig(state_dir=tmp_path / "state"), stores={
        "gone": StoreConfig(url="s3:http://127.0.0.1:9/city", credentials_file=credentials),
        "disk": StoreConfig(path=tmp_path / "repos")})
    (tmp_path / "repos").mkdir()
    ring = tmp_path / "ring"
    ring.mkdir()
    (ring / "a.pem").write_bytes(public_pem(EvidenceKey.load_or_create(tmp_path).public_key))
    rt = Runtime.create(config)
    report, _ = build_fleet_report(rt, Keyring.load(ring))
    rt.close()
    assert report.stores == ["disk", "gone"]
    assert [(u["store"], u["exit_code"]) for u in report.unreadable] == [
        ("gone", ExitCode.STORE_UNREACHABLE)]
    assert not report.all_good
