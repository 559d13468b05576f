"""Where things are on a medium. Every name is lowercase ASCII, short, and free of characters a
vfat/exFAT file system refuses, so a medium survives any file system a USB disk or disc carries:

    <medium>/drbackup-media.json         the signed manifest, written last (temp + rename + fsync)
    <medium>/drbackup-media.incomplete   written first, removed after the manifest: an export
                                         that did not end leaves it, and verify says so
    <medium>/drbackup-media.pub.pem      the exporting host's public key (identification only:
                                         trust comes from --public-key or the local key)
    <medium>/agencies/<agency>/repo/     the agency's restic repository, mirrored file for file
                                         (jobs/media_mirror.py: lowercase hex names, packs of a
                                         few MiB, no symlinks, permissions ignored)
    <medium>/agencies/<agency>/reports/  signed evidence reports carried across
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

MANIFEST = "drbackup-media.json"
MANIFEST_TMP = "drbackup-media.json.tmp"
INCOMPLETE = "drbackup-media.incomplete"
PUBLIC_KEY = "drbackup-media.pub.pem"
AGENCIES = "agencies"
REPO = "repo"
REPORTS = "reports"
# Files of the medium that are not listed in the manifest: the manifest itself and its helpers.
UNLISTED = frozenset({MANIFEST, MANIFEST_TMP, INCOMPLETE, PUBLIC_KEY})
# restic's lock files come and go with every command that opens the repository.
_LOCK = re.compile(r"agencies/[a-z0-9_-]+/repo/locks/[0-9a-f]{64}")
# Every listed path: agencies/<id>/repo/... or agencies/<id>/reports/<name>.json.
_LISTED = re.compile(r"agencies/[a-z0-9][a-z0-9_-]{0,62}/(repo/[a-z0-9/]{1,200}"
                     r"|reports/[A-Za-z0-9._-]{1,200}\.(json|pem))")
MAX_FILE_BYTES = 4 * 1024**3 - 1  # vfat's limit


def repository(medium: Path, agency: str) -> Path:
    return medium / AGENCIES / agency / REPO


def reports(medium: Path, agency: str) -> Path:
    return medium / AGENCIES / agency / REPORTS


def is_lock(relative: str) -> bool:
    return bool(_LOCK.fullmatch(relative))


def valid_listed_path(relative: str) -> bool:
    """A path a genuine manifest can list: relative, no '..', of the layout's shape."""
    parts = PurePosixPath(relative).parts
    return ".." not in parts and bool(_LISTED.fullmatch(relative))
