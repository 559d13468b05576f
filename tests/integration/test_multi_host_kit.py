"""The recovery kit of an agency whose sources sit on two hosts: each host's kit is its own file
in the store (neither replaces the other's); a kit opened on a new machine names the
maintenance host, so the restore host never prunes, and `restore --all-sources` from it brings
back the sources of both hosts, not only those its config lists."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from drbackup.errors import ExitCode
from tests.support.hosts import AGENCY, host
from tests.support.kits import printed_signer
from tests.support.trees import manifest
from tests.support.workspace import Workspace


def test_each_host_has_its_kit_and_any_kit_restores_every_host(
        tmp_path: Path, restic_binary: str) -> None:
    repos = tmp_path / "repos"
    data: dict[str, Path] = {}
    hosts: dict[str, Workspace] = {}
    for name, source in (("host-a", "documents"), ("host-b", "scans")):
        data[source] = tmp_path / "data" / source
        (data[source] / "sub").mkdir(parents=True)
        (data[source] / "sub" / f"{source}.txt").write_text(f"{source} on {name}\n" * 50)
        hosts[name] = host(tmp_path, name, restic=restic_binary, repos=repos,
                           password="one-password", maintenance_host="host-a", source=source,
                           data=data[source])
    hosts["host-a"].cli("repo", "init", check=True)
    keys = tmp_path / "keys"
    hosts["host-a"].cli("recovery-kit", "keygen", "--out", str(keys / "identity"), check=True)
    for name, ws in hosts.items():
        ws.cli("backup", "--agency", AGENCY, "--no-progress", check=True)
        ws.cli("recovery-kit", "create", "--recipient", str(keys / "identity.pub"), "--agency",
               AGENCY, "--out", str(tmp_path / "kits" / name), check=True)
    uploaded = sorted(p.name for p in (repos / "_recovery-kit").iterdir())
    assert uploaded == [f"drbackup-recovery-kit-{AGENCY}.host-a.kit",
                        f"drbackup-recovery-kit-{AGENCY}.host-b.kit"]

    document = tmp_path / "kits" / "host-b" / f"drbackup-recovery-kit-{AGENCY}.txt"
    text = document.read_text()
    assert "sources scans (those of host host-b;" in text and "maintenance host host-a" in text
    assert f"drbackup-recovery-kit-{AGENCY}.host-b.kit from any store" in text
    out = tmp_path / "opened"
    hosts["host-b"].cli("recovery-kit", "open", "--identity", str(keys / "identity"), "--kit",
                        str(repos / "_recovery-kit" / f"drbackup-recovery-kit-{AGENCY}"
                            ".host-b.kit"),
                        "--out", str(out), "--signer-fingerprint", printed_signer(document),
                        check=True)
    config = (out / "drbackup.toml").read_text()
    assert 'maintenance_host = "host-a"' in config
    rescue = Workspace(tmp_path / "rescue")

    def opened(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "drbackup", "--config",
                               str(out / "drbackup.toml"), *args], env=rescue.env(),
                              capture_output=True, text=True, timeout=300, check=False)

    target = tmp_path / "restored"
    restored = opened("--json", "restore", "--agency", AGENCY, "--all-sources", "--target",
                      str(target), "--no-progress")
    assert restored.returncode == 0, restored.stderr
    total = json.loads(restored.stdout.splitlines()[-1])
    assert total["restored"] == 2 and total["missing"] == []
    for source, folder in data.items():
        assert manifest(target / source / folder.relative_to("/")) == manifest(folder), source
    pruned = opened("prune", "--agency", AGENCY)
    assert pruned.returncode == ExitCode.MAINTENANCE_REFUSED, pruned.stderr
