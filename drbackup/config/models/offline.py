"""[agencies.offline]: the agency's offline copies on removable media (#19)."""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import Field, field_validator

from drbackup.config.models.base import AbsolutePath, Identifier, StrictModel
from drbackup.config.units import Duration

_SUBSET = re.compile(r"\d{1,4}/\d{1,4}|\d{1,3}(\.\d{1,3})?%|\d{1,9}[KMGT]?")


class OfflineConfig(StrictModel):
    """Rotation of the agency's offline media and how an export is read back."""

    media_set: int = Field(
        2, ge=1, le=100,
        description=(
            "Media in the rotation set (e.g. 2: one in the safe while the other is written). "
            "'drbackup media list' flags an agency with fewer verified media than this."),
    )
    max_age: Duration = Field(
        timedelta(days=7),
        description=(
            "Oldest the newest snapshot on a verified offline medium may be before the "
            "DrBackupOfflineCopyTooOld alert fires (exported as "
            "drbackup_offline_max_age_seconds)."),
    )
    destination: Identifier = Field(
        "internal",
        description=(
            "Name of the side the media go to: each export takes the next sequence number of "
            "(agency, destination), and an import refuses a number it has already seen."),
    )
    public_key: AbsolutePath | None = Field(
        None,
        description=(
            "On the importing side: the exporting host's evidence public key (its "
            "<state_dir>/evidence/ed25519.pub.pem, carried out of band). 'drbackup media "
            "verify' and 'import' trust media signed by it ('--public-key' overrides)."),
        examples=["/etc/drbackup/external-host.pub.pem"],
    )
    read_data_subset: str | None = Field(
        None,
        description=(
            "What the export's read-back 'restic check' reads of the medium's repository: "
            "unset reads every pack (--read-data); otherwise a --read-data-subset value "
            "('1/5', '10%', '500M')."),
        examples=["10%"],
    )

    @field_validator("read_data_subset")
    @classmethod
    def _subset(cls, value: str | None) -> str | None:
        if value is not None and not _SUBSET.fullmatch(value):
            raise ValueError(f"{value!r} is not a restic --read-data-subset value "
                             "(n/t, x%, or a size such as 500M)")
        return value
