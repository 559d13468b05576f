"""drbackup media import: verify the medium first (signature, every file, replay), then bring
the agency's snapshots into the destination store's repository with restic copy (same chunker
parameters, incremental), confirm them there, record the import, and carry the evidence reports
into this host's state directory so `report` here shows the drills done there (#19 §3)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from drbackup.config.models import AgencyConfig
from drbackup.config.models.base import is_identifier
from drbackup.engine import RepositoryMissing
from drbackup.errors import VerifyFailedError
from drbackup.jobs.media_common import media_lock, medium_target
from drbackup.jobs.media_verify import inspect_medium, require_clean
from drbackup.jobs.recording import recorded_run
from drbackup.jobs.replicate import snapshot_key
from drbackup.jobs.runtime import Runtime
from drbackup.media.errors import MediaInvalidError
from drbackup.media.layout import AGENCIES, REPORTS
from drbackup.media.manifest import write_durably
from drbackup.state.media import (
    ImportedEvidence,
    highest_imported,
    record_evidence,
    record_import,
)
from drbackup.verify.evidence import verify_envelope

log = logging.getLogger(__name__)
EVIDENCE_KINDS = frozenset({"drill", "check"})
VERDICTS = frozenset({"pass", "warning", "fail", "error"})


@dataclass(frozen=True)
class ImportOutcome:
    run_id: int
    agency: str
    store: str
    label: str
    sequence: int
    initialized: bool
    copied: list[str]  # manifest snapshot ids new in the store
    store_snapshots: int
    reports: int
    seconds: float


def _timestamp(value: object) -> float | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _short(value: object, limit: int = 253) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


def carried_evidence(body: bytes, trusted: Ed25519PublicKey, *, agency: str, name: str,
                     label: str, imported_at: float) -> ImportedEvidence | None:
    """What a carried report says, when it is an evidence envelope of this agency signed by
    the trusted key (the exporting host's); None otherwise (the file is still carried, but
    not counted: its content is not vouched for). Every field is checked for type and size."""
    try:
        verified = verify_envelope(json.loads(body), trusted, name=name)
    except (ValueError, VerifyFailedError):
        return None
    report = verified.report
    kind = report.get("kind")
    if report.get("agency") != agency or kind not in EVIDENCE_KINDS:
        return None
    source = report.get("source")
    verdict = report.get("verdict")
    rto = report.get("rto")
    estimate = rto.get("estimate_seconds") if isinstance(rto, dict) else None
    return ImportedEvidence(
        agency=agency, name=name, kind=str(kind),
        source=source if is_identifier(source) else None,
        sub_kind=_short(report.get("drill_kind") or report.get("check_kind"), 32),
        verdict=verdict if verdict in VERDICTS else None,
        finished_at=_timestamp(report.get("finished_at")),
        host=_short(report.get("host")) or "?",
        rto_estimate_seconds=float(estimate) if isinstance(estimate, (int, float))
        and not isinstance(estimate, bool) and estimate >= 0 else None,
        key_id=verified.key_id, label=label, imported_at=imported_at)


def _carry_reports(rt: Runtime, medium: Path, agency: str, listed: set[str],
                   trusted: Ed25519PublicKey, label: str) -> int:
    """The medium's evidence reports of the agency (only files the verified manifest lists)
    into <state_dir>/reports/<agency>/, and those signed by the trusted key recorded, so this
    side's `report` shows the drills done where the data lives."""
    prefix = f"{AGENCIES}/{agency}/{REPORTS}/"
    target = rt.config.daemon.state_dir / "reports" / agency
    count = 0
    evidence: list[ImportedEvidence] = []
    now = time.time()
    for relative in sorted(p for p in listed if p.startswith(prefix) and p.endswith(".json")):
        name = relative[len(prefix):]
        if "/" in name:
            continue
        target.mkdir(parents=True, exist_ok=True)
        body = (medium / relative).read_bytes()
        found = carried_evidence(body, trusted, agency=agency, name=name, label=label,
                                 imported_at=now)
        if found is None:
            log.warning("report %s on medium %s is not evidence of %s signed by the trusted "
                        "key: carried, not counted", name, label, agency)
        else:
            evidence.append(found)
        if (target / name).is_file() and (target / name).read_bytes() == body:
            continue
        write_durably(target / name, body)
        count += 1
    record_evidence(rt.state, evidence)
    return count


def import_media(rt: Runtime, agency: AgencyConfig, medium_path: Path,
                 trusted: Ed25519PublicKey, *, store: str | None = None) -> ImportOutcome:
    """Verify, copy, confirm, record. Raises MediaInvalidError / MediaIncompleteError (nothing
    imported), VerifyFailedError when the store does not hold every snapshot afterwards,
    restic's and the store's errors."""
    started = time.monotonic()
    store_name = store or agency.store
    rt.restic.require_supported()
    with media_lock(rt.config.daemon.state_dir):
        inspection = inspect_medium(medium_path, trusted, state=rt.state,
                                    agencies={agency.id: agency}, restic=rt.restic)
        manifest = inspection.manifest
        if agency.id not in manifest.agencies:
            raise MediaInvalidError(
                f"medium {manifest.label} holds no copy of agency {agency.id} (it holds "
                f"{', '.join(sorted(manifest.agencies))})", "take the agency's medium")
        require_clean(inspection)
        medium = Path(inspection.medium)
        entry = manifest.agencies[agency.id]
        with recorded_run(rt, "media-import", agency.id, store=store_name) as run:
            source, target = medium_target(medium, agency, manifest.label,
                                           read_only=True), rt.target(
                agency, store_name)
            rt.check_store(store_name)
            s3 = rt.s3_store(store_name)
            if s3 is not None:
                s3.ensure_bucket(create=rt.store_config(store_name).create_bucket)
            initialized = False
            try:
                before = {snapshot_key(s) for s in rt.restic.snapshots(target)}
            except RepositoryMissing:
                rt.restic.init(target, copy_chunker_params_from=source)
                before, initialized = set(), True
            rt.restic.copy(source, target)
            after = rt.restic.snapshots(target)
            present = {snapshot_key(s) for s in after}
            wanted = [s.id for s in entry.snapshots]
            missing = [s for s in wanted if s not in present]
            if missing:
                raise VerifyFailedError(
                    f"after the copy, {len(missing)} snapshot(s) of medium {manifest.label} "
                    f"are not in {agency.id}@{store_name} (first: {missing[0][:8]})",
                    "run the import again; if it persists, check the store")
            result = rt.restic.check(target)
            if not result.ok:
                raise VerifyFailedError(f"restic check of {agency.id}@{store_name} failed "
                                        "after the import", "; ".join(result.errors[:3]))
            if highest_imported(rt.state, agency.id, manifest.key_id,
                                manifest.destination) >= entry.sequence:
                raise MediaInvalidError(f"medium {manifest.label} was imported meanwhile by "
                                        "another command", "nothing more to do")
            record_import(rt.state, agency=agency.id, key_id=manifest.key_id,
                          destination=manifest.destination, sequence=entry.sequence,
                          label=manifest.label, imported_at=time.time(), snapshots=wanted)
            carried = _carry_reports(rt, medium, agency.id, set(manifest.files), trusted,
                                     manifest.label)
            copied = [s for s in wanted if s not in before]
            run.finish("success", details={"label": manifest.label, "sequence": entry.sequence,
                                           "copied": copied, "reports": carried})
            return ImportOutcome(run.run_id, agency.id, store_name, manifest.label,
                                 entry.sequence, initialized, copied, len(after), carried,
                                 time.monotonic() - started)
