"""The recovery kit for agencies with offline media ([agencies.offline], #19 §4): the day the
stores are gone and a medium in the safe is all that is left. The kit carries, per such agency,
the public key its media are signed with (this host's evidence key when it exports them, else
the exporting host's key it trusts for imports) and its media settings; the printout says the
exact command; the opened config has [agencies.offline] with that key, so `restore
--from-media` on the fresh host checks the medium's signature."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from drbackup.config.models import AgencyConfig, Config
from drbackup.recovery.sealing import RecoveryKitError
from drbackup.verify.evidence import EvidenceKey, load_public_key, public_pem

KEYS_DIR = "media-keys"  # in the opened kit's directory: <agency>.pub.pem


def restore_command(agency: str) -> str:
    return (f"drbackup restore --from-media /media/MEDIUM --agency {agency} --all-sources "
            "--target /srv/restore")


def entry(config: Config, agency: AgencyConfig) -> dict[str, Any] | None:
    """The kit's `offline` entry of an agency (None without [agencies.offline])."""
    if agency.offline is None:
        return None
    if agency.offline.public_key is not None:
        key = load_public_key(agency.offline.public_key)
    else:
        key = EvidenceKey.load_or_create(config.daemon.state_dir).public_key
    return {"destination": agency.offline.destination, "media_set": agency.offline.media_set,
            "public_key_pem": public_pem(key).decode("ascii")}


def summary(agency: dict[str, Any]) -> str | None:
    """The printout's line for an agency with media: how to restore from one."""
    if not isinstance(agency.get("offline"), dict):
        return None
    return (f"agency {agency['id']}: offline media ({agency['offline'].get('media_set')} in the "
            f"set); with only a medium left: {restore_command(agency['id'])}")


def key_file(out_dir: Path, agency_id: str) -> Path:
    return out_dir / KEYS_DIR / f"{agency_id}.pub.pem"


def key_pem(agency: dict[str, Any]) -> bytes | None:
    """The media signing key of an agency's entry, checked to be an Ed25519 public key.

    Raises RecoveryKitError."""
    media = agency.get("offline")
    if not isinstance(media, dict):
        return None
    pem = media.get("public_key_pem")
    try:
        key = serialization.load_pem_public_key(str(pem).encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        key = None
    if not isinstance(key, Ed25519PublicKey):
        raise RecoveryKitError(f"the kit's media key of agency {agency.get('id')!r} is not an "
                               "Ed25519 public key", "re-create the kit on the host")
    return public_pem(key)


def config_lines(agency: dict[str, Any], out_dir: Path) -> list[str]:
    """[agencies.offline] for the opened config (empty without media)."""
    media = agency.get("offline")
    if not isinstance(media, dict):
        return []
    size = media.get("media_set")
    return ["[agencies.offline]",
            f"destination = {json.dumps(str(media.get('destination', 'internal')))}",
            f"media_set = {size if isinstance(size, int) and 1 <= size <= 100 else 2}",
            f"public_key = {json.dumps(str(key_file(out_dir, agency['id'])))}", ""]
