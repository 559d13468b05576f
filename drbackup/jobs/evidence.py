"""Publishing evidence: sign a check or drill report, keep it in the state directory, and upload
it to the agency's store under reports/ (S3: <prefix>/<agency>/reports/<name>; local store:
<path>/<agency>/reports/<name>, inside the repository directory, which restic ignores)."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drbackup.config.models import AgencyConfig
from drbackup.errors import DrBackupError
from drbackup.jobs.runtime import Runtime
from drbackup.store import S3Location
from drbackup.verify.evidence import PUBLIC_KEY_FILE, EvidenceKey, public_pem

log = logging.getLogger(__name__)
REPORTS_DIR = "reports"


@dataclass(frozen=True)
class PublishedReport:
    path: Path  # the signed copy in the state directory
    store_key: str | None  # where it went in the store (object key or file path)
    key_id: str
    upload_error: str | None = None


def utc_iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


def report_name(kind: str, subject: str, run_id: int, when: float) -> str:
    stamp = datetime.fromtimestamp(when, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{kind}-{subject}-run{run_id}.json"


def evidence_key(rt: Runtime) -> EvidenceKey:
    return EvidenceKey.load_or_create(rt.config.daemon.state_dir)


def publish_report(rt: Runtime, agency: AgencyConfig, name: str, report: dict[str, Any]
                   ) -> PublishedReport:
    """Sign `report`, write it under <state_dir>/reports/<agency>/, upload it to the store.

    Raises StateError when the key or the state copy cannot be written. A failed upload is
    recorded in the result (the state copy and the run still exist), not raised.
    """
    key = evidence_key(rt)
    envelope = key.sign(report)
    body = (json.dumps(envelope, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
    directory = rt.config.daemon.state_dir / REPORTS_DIR / agency.id
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(body)
    os.replace(tmp, path)
    store_key: str | None = None
    upload_error: str | None = None
    try:
        store_key = _upload(rt, agency, name, body, public_pem(key.public_key))
    except DrBackupError as exc:
        upload_error = exc.one_line()
        log.warning("evidence report %s not uploaded: %s", name, upload_error,
                    extra={"agency": agency.id})
    except OSError as exc:
        upload_error = f"{exc.__class__.__name__}: {exc.strerror or exc}"
        log.warning("evidence report %s not uploaded: %s", name, upload_error,
                    extra={"agency": agency.id})
    return PublishedReport(path, store_key, key.key_id, upload_error)


def _upload(rt: Runtime, agency: AgencyConfig, name: str, body: bytes, pem: bytes) -> str:
    store = rt.store_config(agency.store)
    if store.url is not None:
        s3 = rt.s3_store(agency.store)
        assert s3 is not None
        prefix = S3Location.parse(store.url).child(agency.id).prefix
        key = f"{prefix}/{REPORTS_DIR}/{name}"
        s3.put_bytes(key, body)
        s3.put_bytes(f"{prefix}/{REPORTS_DIR}/{PUBLIC_KEY_FILE}", pem)
        return key
    assert store.path is not None
    directory = store.path / agency.id / REPORTS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(body)
    (directory / PUBLIC_KEY_FILE).write_bytes(pem)
    return str(directory / name)
