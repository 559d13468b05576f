"""stores.<name>.limit_upload reaches restic as --limit-upload (KiB/s)."""

from __future__ import annotations

from pathlib import Path

from drbackup.config.models import AgencyConfig, Config, StoreConfig
from drbackup.engine import Restic, ResticSettings
from drbackup.jobs.runtime import Runtime


def test_limit_upload_goes_to_restic_argv(tmp_path: Path) -> None:
    args_file = tmp_path / "argv"
    fake = tmp_path / "restic"
    fake.write_text(f'#!/bin/sh\necho "$@" > {args_file}\n')
    fake.chmod(0o755)
    config = Config(stores={"slow": StoreConfig(path=tmp_path / "repos", limit_upload="512KiB")},
                    agencies=[AgencyConfig(id="planning", password_file=tmp_path / "pw",
                                           store="slow")])
    rt = Runtime(config=config, restic=Restic(ResticSettings(binary=str(fake))))
    target = rt.target(config.agency("planning"))
    assert target.limit_upload_kib == 512
    rt.restic.unlock(target)
    assert "--limit-upload 512" in args_file.read_text()
    unlimited = Runtime.create(Config(agencies=[AgencyConfig(id="a", password_file=tmp_path)]))
    assert unlimited.target(unlimited.config.agency("a")).limit_upload_kib is None
