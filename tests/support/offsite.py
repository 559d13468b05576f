"""Helpers for the offsite tests: shipped policies, runtimes over a Workspace, small trees."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from drbackup.config import load_config
from drbackup.jobs.runtime import Runtime
from drbackup.store import S3Credentials
from tests.support.servers import IamS3
from tests.support.workspace import Workspace

POLICIES = Path(__file__).resolve().parents[2] / "config" / "policies"
REFUSED = {"AccessDenied", "403", "Forbidden"}


def policy(name: str, bucket: str) -> dict[str, Any]:
    """A shipped policy (config/policies/<name>.json) for this bucket."""
    text = (POLICIES / f"{name}.json").read_text().replace("<BUCKET>", bucket)
    value = json.loads(text)
    assert isinstance(value, dict)
    return value


def credentials_text(creds: S3Credentials) -> str:
    return (f"[default]\naws_access_key_id = {creds.access_key_id}\n"
            f"aws_secret_access_key = {creds.secret_access_key}\n")


def runtime(workspace: Workspace) -> Runtime:
    return Runtime.create(load_config(workspace.write()))


def error_code(exc: ClientError) -> str:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code or str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


def small_tree(root: Path, seed: int = 0, files: int = 20) -> Path:
    """A few KB of files whose content depends on seed."""
    root.mkdir(parents=True, exist_ok=True)
    for index in range(files):
        (root / f"file-{index:03d}.txt").write_text(f"seed {seed} file {index}\n" * (index + 1))
    (root / "sub").mkdir(exist_ok=True)
    (root / "sub" / "random.bin").write_bytes(os.urandom(4096))
    return root


def split_key_store(workspace: Workspace, iam_s3: IamS3, bucket: str
                    ) -> tuple[S3Credentials, S3Credentials]:
    """Store "offsite" on the IAM-enforcing server: the daily key (config/policies/
    daily-work.json) as its credentials_file, the maintenance key (maintenance.json) as its
    maintenance_credentials_file, governance lock of one day. Returns (daily, maintenance)."""
    daily = iam_s3.user(f"daily-{bucket}", policy("daily-work", bucket))
    maintenance = iam_s3.user(f"maint-{bucket}", policy("maintenance", bucket))
    maint_file = workspace.secret_file("maint.credentials", credentials_text(maintenance))
    workspace.add_s3_store("offsite", iam_s3.server, bucket, access_key=daily.access_key_id,
                           secret_key=daily.secret_access_key,
                           maintenance_credentials_file=str(maint_file),
                           lock_mode="governance", lock_days=1)
    return daily, maintenance
