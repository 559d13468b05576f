"""systemd/drbackup.service passes `systemd-analyze verify` and scores ≤ 2.5 in
`systemd-analyze security --offline=yes` (the real systemd-analyze; its absence fails)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "drbackup.service"
MAX_EXPOSURE = 2.5


@pytest.fixture
def unit_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this venv's drbackup (verify checks it exists)."""
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is not installed (apt-get install systemd)")
    drbackup = Path(sys.executable).parent / "drbackup"
    assert drbackup.exists()
    text = UNIT.read_text().replace("/usr/local/bin/drbackup", str(drbackup))
    copy = tmp_path / "drbackup.service"
    copy.write_text(text)
    return copy


def test_unit_verifies(unit_copy: Path) -> None:
    result = subprocess.run(["systemd-analyze", "verify", str(unit_copy)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "drbackup.service" not in result.stderr, result.stderr


def test_unit_security_exposure_is_low(unit_copy: Path) -> None:
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit_copy)],
                            capture_output=True, text=True, timeout=120)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout


def test_unit_has_the_required_settings() -> None:
    text = UNIT.read_text()
    for setting in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "StateDirectory=",
                    "CacheDirectory=", "RuntimeDirectory=", "LoadCredential=",
                    "CapabilityBoundingSet=CAP_DAC_READ_SEARCH",
                    "AmbientCapabilities=CAP_DAC_READ_SEARCH", "ProtectSystem=strict",
                    "ProtectHome=read-only", "PrivateTmp=yes", "NoNewPrivileges=yes",
                    "RestrictAddressFamilies=", "SystemCallFilter=@system-service",
                    "KillMode=mixed", "User=drbackup", "IOSchedulingClass=idle"):
        assert setting in text, setting
