"""drbackup media import: verify the medium first (signature, every file, replay), then bring
the agency's snapshots into the destination store's repository with restic copy (same chunker
parameters, incremental), confirm them there, record the import, and carry the evidence reports
into this host's state directory so `report` here shows the drills done there (#19 §3)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from drbackup.config.models import AgencyConfig
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
from drbackup.state.media import highest_imported, record_import

log = logging.getLogger(__name__)


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


def _carry_reports(rt: Runtime, medium: Path, agency: str, listed: set[str]) -> int:
    """The medium's evidence reports of the agency (only files the verified manifest lists)
    into <state_dir>/reports/<agency>/."""
    prefix = f"{AGENCIES}/{agency}/{REPORTS}/"
    target = rt.config.daemon.state_dir / "reports" / agency
    count = 0
    for relative in sorted(p for p in listed if p.startswith(prefix) and p.endswith(".json")):
        name = relative[len(prefix):]
        if "/" in name:
            continue
        target.mkdir(parents=True, exist_ok=True)
        body = (medium / relative).read_bytes()
        if (target / name).is_file() and (target / name).read_bytes() == body:
            continue
        write_durably(target / name, body)
        count += 1
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
            source, target = medium_target(medium, agency, manifest.label), rt.target(
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
            carried = _carry_reports(rt, medium, agency.id, set(manifest.files))
            copied = [s for s in wanted if s not in before]
            run.finish("success", details={"label": manifest.label, "sequence": entry.sequence,
                                           "copied": copied, "reports": carried})
            return ImportOutcome(run.run_id, agency.id, store_name, manifest.label,
                                 entry.sequence, initialized, copied, len(after), carried,
                                 time.monotonic() - started)
