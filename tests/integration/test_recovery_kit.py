"""The recovery kit through the CLI: sealed to the offline key, uploaded to every store, no
plaintext secret in any kit file; opening it with the wrong identity, truncated or with one
flipped byte fails with one clear line, a distinct exit code, and writes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from drbackup.errors import ExitCode
from tests.support.dbcheck import permits_rows, permits_sqlite
from tests.support.kits import printed_signer
from tests.support.servers import TEST_SECRET_KEY, MotoServer
from tests.support.workspace import Workspace


@pytest.fixture
def kit(workspace: Workspace, s3_server: MotoServer, tmp_path: Path
        ) -> tuple[Workspace, Path, Path, str]:
    bucket = f"kit-{uuid.uuid4().hex[:10]}"
    readonly = workspace.secret_file(
        "readonly.credentials",
        "[default]\naws_access_key_id = readonly-key\naws_secret_access_key = readonly-secret-77\n")
    workspace.add_s3_store("primary", s3_server, bucket, recovery_credentials_file=str(readonly))
    workspace.add_agency("planning", store="primary")
    workspace.add_agency("roads")  # local store
    keys = tmp_path / "keys"
    workspace.cli("recovery-kit", "keygen", "--out", str(keys / "identity"), check=True)
    assert (keys / "identity").stat().st_mode & 0o777 == 0o600
    created = workspace.cli("recovery-kit", "create", "--recipient", str(keys / "identity.pub"),
                            "--include-s3-credentials", "--out", str(tmp_path / "kits"),
                            check=True)
    assert "SHA256: " in created.stdout
    return workspace, tmp_path / "kits" / "drbackup-recovery-kit-all.kit", keys, bucket


def test_kit_is_sealed_uploaded_and_opens_into_a_working_config(
        kit: tuple[Workspace, Path, Path, str], s3_server: MotoServer, tmp_path: Path) -> None:
    ws, kit_file, keys, bucket = kit
    document = kit_file.with_suffix(".txt")
    secrets = [*ws.passwords.values(), TEST_SECRET_KEY, "readonly-secret-77"]
    local_copy = ws.state_dir / "repos" / "_recovery-kit" / kit_file.name
    for path in (kit_file, document, local_copy):
        content = path.read_bytes()
        assert not any(secret.encode() in content for secret in secrets), path
    uploaded = s3_server.client().get_object(Bucket=bucket, Key=f"_recovery-kit/{kit_file.name}")
    assert uploaded["Body"].read() == kit_file.read_bytes() == local_copy.read_bytes()
    fingerprint = (keys / "identity.pub").read_text().splitlines()[1].split(": ")[1]
    assert fingerprint.removeprefix("SHA256:")[:4] in document.read_text()

    out = tmp_path / "opened"
    opened = ws.cli("recovery-kit", "open", "--identity", str(keys / "identity"), "--kit",
                    str(document), "--out", str(out), "--signer-fingerprint",
                    printed_signer(document), check=True)
    assert f"signed by host key {printed_signer(document)}" in opened.stdout
    assert f"store primary: {ws.config['stores']['primary']['url']}" in opened.stdout
    for agency, password in ws.passwords.items():
        secret = out / "passwords" / f"{agency}.password"
        assert secret.read_text() == password + "\n"
        assert secret.stat().st_mode & 0o777 == 0o600
    credentials = out / "credentials" / "primary.credentials"
    assert credentials.stat().st_mode & 0o777 == 0o600
    assert "readonly-secret-77" in credentials.read_text()  # the read-only keys, not the daily
    assert TEST_SECRET_KEY not in credentials.read_text()
    env = {**ws.env(), "DRBACKUP_CONFIG": str(out / "drbackup.toml")}
    result = subprocess.run([sys.executable, "-m", "drbackup", "config", "check"], env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "2 agencies" in result.stdout


def _open(ws: Workspace, identity: Path, kit_file: Path, out: Path
          ) -> tuple[int, str]:
    result = ws.cli("recovery-kit", "open", "--identity", str(identity), "--kit", str(kit_file),
                    "--out", str(out), "--signer", str(ws.state_dir / "evidence" /
                                                       "ed25519.pub.pem"))
    return result.returncode, result.stderr


def test_bad_kits_fail_clearly_and_write_nothing(kit: tuple[Workspace, Path, Path, str],
                                                 tmp_path: Path) -> None:
    ws, kit_file, keys, _ = kit
    ws.cli("recovery-kit", "keygen", "--out", str(tmp_path / "other" / "identity"), check=True)
    content = kit_file.read_bytes()
    truncated = tmp_path / "truncated.kit"
    truncated.write_bytes(content[: len(content) * 2 // 3])
    flipped = tmp_path / "flipped.kit"
    damaged = bytearray(content)
    damaged[len(content) // 2] ^= 0x04
    flipped.write_bytes(bytes(damaged))
    cases = [(tmp_path / "other" / "identity", kit_file, "sealed to key"),
             (keys / "identity", truncated, "damaged or truncated"),
             (keys / "identity", flipped, "damaged or truncated")]
    parent = tmp_path / "restore-host"
    parent.mkdir()
    for identity, bad, message in cases:
        code, stderr = _open(ws, identity, bad, parent / "out")
        assert code == ExitCode.KIT_INVALID, stderr
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and lines[0].startswith("drbackup: error:")
        assert os.listdir(parent) == []  # nothing written, no temp dir left behind
    # A good kit, an --out that cannot be written: one line, not a traceback.
    code, stderr = _open(ws, keys / "identity", kit_file, Path("/proc/drbackup-kit"))
    assert code == ExitCode.TARGET_REFUSED, stderr
    assert stderr.startswith("drbackup: error: cannot write into /proc")
    assert "choose a writable directory for --out" in stderr


def test_a_database_dump_restores_on_a_host_opened_from_the_kit(workspace: Workspace,
                                                               tmp_path: Path) -> None:
    """The kit's config carries the SQLite source (#17 item 10: `restore-db --into` on the
    new host), and its dump file comes back with `restore` and `ls` too; a source nobody
    knows is still one clear error."""
    database = permits_sqlite(tmp_path / "permits.sqlite", 300)
    workspace.add_agency("roads")
    workspace.add_source("roads", "permits-db", "sqlite", path=str(database))
    workspace.cli("repo", "init", check=True)
    workspace.cli("backup", "--agency", "roads", check=True)
    keys = tmp_path / "keys"
    workspace.cli("recovery-kit", "keygen", "--out", str(keys / "identity"), check=True)
    workspace.cli("recovery-kit", "create", "--recipient", str(keys / "identity.pub"),
                  "--out", str(tmp_path / "kits"), check=True)
    out = tmp_path / "opened"
    workspace.cli("recovery-kit", "open", "--identity", str(keys / "identity"), "--kit",
                  str(tmp_path / "kits" / "drbackup-recovery-kit-all.kit"), "--out", str(out),
                  "--signer-fingerprint",
                  printed_signer(tmp_path / "kits" / "drbackup-recovery-kit-all.txt"),
                  check=True)
    assert 'id = "permits-db"\nkind = "sqlite"' in (out / "drbackup.toml").read_text()
    env = {**workspace.env(), "DRBACKUP_CONFIG": str(out / "drbackup.toml")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "drbackup", *args], env=env,
                              capture_output=True, text=True, check=False)

    again = cli("restore-db", "--agency", "roads", "--source", "permits-db", "--into",
                str(tmp_path / "again.sqlite"))
    assert again.returncode == 0, again.stderr
    assert permits_rows(tmp_path / "again.sqlite") == (300, "holder 99")

    listed = cli("ls", "--agency", "roads", "--source", "permits-db")
    assert listed.returncode == 0, listed.stderr
    assert "/permits.sqlite" in listed.stdout
    target = tmp_path / "restored"
    restored = cli("restore", "--agency", "roads", "--source", "permits-db", "--target",
                   str(target), "--no-progress")
    assert restored.returncode == 0, restored.stderr
    assert permits_rows(target / "permits.sqlite") == (300, "holder 99")
    unknown = cli("restore", "--agency", "roads", "--source", "permit-db", "--target",
                  str(tmp_path / "nothing"))
    assert unknown.returncode == ExitCode.NOT_FOUND
    assert "has no source 'permit-db': not in the config and no snapshot" in unknown.stderr
    assert not (tmp_path / "nothing").exists()
