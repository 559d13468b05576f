"""The two sides of the air gap for the offline-media tests (#19): the external host (an S3
store on the plain moto server, agency "planning" backed up) and the internal host (its own
store on the IAM-enforcing moto server, other credentials), plus helpers that run restic
directly on a medium as a host that never saw the source would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.offsite import small_tree
from tests.support.servers import IamS3, MotoServer
from tests.support.workspace import Workspace


@dataclass
class Sides:
    external: Workspace
    internal: Workspace
    data: Path
    public_key: Path  # the external host's evidence public key, as carried out of band


def external_host(root: Path, s3: MotoServer, bucket: str) -> tuple[Workspace, Path]:
    workspace = Workspace(root / "external")
    workspace.add_s3_store("offsite", s3, bucket, create_bucket=True)
    workspace.add_agency("planning", store="offsite",
                         offline={"media_set": 2, "max_age": "7d"})
    data = small_tree(root / "data")
    (data / "blob.bin").write_bytes(os.urandom(256 * 1024))
    workspace.add_directory_source("planning", "documents", [data])
    workspace.cli("repo", "init", check=True)
    workspace.cli("backup", "--agency", "planning", check=True)
    return workspace, data


def internal_host(root: Path, iam_s3: IamS3, bucket: str, password: str, public_key: Path
                  ) -> Workspace:
    """The internal side: the agency's password (carried in its sealed kit), the external
    host's public key, a store on another server with credentials of its own."""
    user = iam_s3.user(f"internal-{bucket}", {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]})
    iam_s3.client().create_bucket(Bucket=bucket)
    workspace = Workspace(root / "internal")
    workspace.add_s3_store("vault", iam_s3.server, bucket, access_key=user.access_key_id,
                           secret_key=user.secret_access_key)
    workspace.add_agency("planning", store="vault", password=password,
                         offline={"public_key": str(public_key)})
    return workspace


def export(workspace: Workspace, medium: Path, *extra: str) -> dict[str, Any]:
    result = workspace.cli("--json", "media", "export", "--agency", "planning", "--to",
                           str(medium), *extra)
    assert result.returncode == 0, result.stderr
    value = json.loads(result.stdout)
    assert isinstance(value, dict)
    return value


def restic(password_file: Path, repo: Path, *args: str, cache: Path
           ) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "RESTIC_PASSWORD_FILE": str(password_file),
           "RESTIC_REPOSITORY": str(repo), "RESTIC_CACHE_DIR": str(cache), "HOME": str(cache)}
    return subprocess.run(["restic", *args], capture_output=True, text=True, env=env,
                          check=False, timeout=300)


def copy_medium(medium: Path, to: Path) -> Path:
    """A copy of the medium's content in a plain directory (to tamper with, or to replay)."""
    shutil.copytree(medium, to, symlinks=True)
    return to


def manifest_of(medium: Path) -> dict[str, Any]:
    value = json.loads((medium / "drbackup-media.json").read_text())
    assert isinstance(value, dict)
    return value


def signed_by_another_key(manifest: dict[str, Any]) -> bytes:
    """The same manifest, signed by a key nobody trusts (a forger's)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from drbackup.verify.evidence import EvidenceKey

    envelope = EvidenceKey(Ed25519PrivateKey.generate()).sign(manifest)
    return (json.dumps(envelope, sort_keys=True) + "\n").encode()
