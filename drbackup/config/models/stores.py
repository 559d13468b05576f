"""[stores.NAME]: local directories and S3 buckets, their credentials and Object Lock."""

from __future__ import annotations

import re
from datetime import time
from typing import Literal

from pydantic import Field, model_validator

from drbackup.config.models.base import AbsolutePath, StrictModel
from drbackup.config.units import ByteSize

_WINDOW = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)")


def parse_window(text: str) -> tuple[time, time]:
    """(start, end) of "HH:MM-HH:MM"; end before start spans midnight. ValueError otherwise."""
    match = _WINDOW.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"copy_window {text!r} is not HH:MM-HH:MM (e.g. 20:00-06:00)")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if (h1, m1) == (h2, m2):
        raise ValueError(f"copy_window {text!r} is empty (start equals end)")
    return time(h1, m1), time(h2, m2)


class StoreConfig(StrictModel):
    """Either an S3-compatible bucket (`url`) or a local directory (`path`)."""

    url: str | None = Field(
        None,
        description=(
            "S3 location as a restic repository prefix, path-style: "
            "s3:https://host[:port]/bucket[/prefix]. Each agency's repository is <url>/<agency id>."
        ),
        examples=["s3:https://s3.example.gov/drbackup-primary"],
    )
    path: AbsolutePath | None = Field(
        None,
        description="Local directory holding one restic repository per agency (instead of url).",
    )
    credentials_file: AbsolutePath | None = Field(
        None,
        description=(
            "INI file with aws_access_key_id / aws_secret_access_key (section [default]) for "
            "daily work; mode 0600 or stricter. ${CREDENTIALS_DIRECTORY} is expanded."
        ),
        examples=["/etc/drbackup/offsite.credentials"],
    )
    recovery_credentials_file: AbsolutePath | None = Field(
        None,
        description=(
            "Read-only S3 keys (same INI format, mode 0600) that 'drbackup recovery-kit create "
            "--include-s3-credentials' seals into the break-glass kit instead of the daily "
            "credentials_file; whoever opens the kit can then read, but not change, the store."
        ),
        examples=["/etc/drbackup/offsite-readonly.credentials"],
    )
    region: str = Field("us-east-1", description="S3 region.")
    create_bucket: bool = Field(
        True, description="Create the bucket when it is missing (needs the right to do so)."
    )
    maintenance_credentials_file: AbsolutePath | None = Field(
        None,
        description=(
            "INI file like credentials_file, used only by retention (forget) and prune: the key "
            "allowed to delete repository objects. Keep it off the backed-up host when you can; "
            "without it, forget/prune use credentials_file (which should not be allowed to "
            "delete). See config/policies/."
        ),
        examples=["/etc/drbackup/offsite-maintenance.credentials"],
    )
    lock_mode: Literal["governance", "compliance"] | None = Field(
        None,
        description=(
            "Object Lock default retention 'store bootstrap' sets on the bucket: 'governance' "
            "(a privileged key may shorten or bypass it) or 'compliance' (nobody can, not even "
            "the account owner). Unset: no Object Lock."
        ),
        examples=["governance"],
    )
    health_schedule: str = Field(
        "every 5m",
        description="How often the daemon checks that this store is reachable (recorded in "
                    "state for metrics; jobs back off while it is down).")
    lock_days: int = Field(
        30, ge=1, le=36500,
        description=(
            "Days every object version stays locked (Object Lock default retention); "
            "noncurrent versions expire this many days after they are replaced or deleted."
        ),
    )
    limit_upload: ByteSize | None = Field(
        None,
        description=(
            "Upload bandwidth limit of each restic process, per second (--limit-upload), "
            "e.g. \"20MiB\"; default: none."),
    )

    limit_download: ByteSize | None = Field(
        None,
        description=(
            "Download bandwidth limit of each restic process reading this store, per second "
            "(--limit-download): a replication reading it as its source, a restore from it; "
            "e.g. \"20MiB\"; default: none."),
    )
    ca_file: AbsolutePath | None = Field(
        None,
        description=(
            "PEM file of the private CA that signed this store's TLS certificate (a government "
            "store's own CA), e.g. /etc/drbackup/dr-centre-ca.pem; trusted for this store in "
            "addition to the system's roots. S3 stores only."),
    )
    copy_window: str | None = Field(
        None,
        description=(
            "When replication into this store may run, local time \"HH:MM-HH:MM\" (may span "
            "midnight), e.g. \"20:00-06:00\" for a link shared by day. A copy still running "
            "at the window's end is stopped (exit 28) and resumed by the next run; outside "
            "the window replication waits. Unset: any time."),
    )

    @model_validator(mode="after")
    def _one_kind(self) -> StoreConfig:
        if (self.url is None) == (self.path is None):
            raise ValueError("a store needs exactly one of 'url' (S3) or 'path' (local directory)")
        if self.copy_window is not None:
            parse_window(self.copy_window)  # raises ValueError naming the mistake
        if self.url is not None:
            if not self.url.startswith("s3:http://") and not self.url.startswith("s3:https://"):
                raise ValueError(
                    f"url {self.url!r} must look like s3:https://host[:port]/bucket[/prefix]"
                )
            if self.credentials_file is None:
                raise ValueError("an S3 store needs 'credentials_file'")
        elif self.ca_file is not None:
            raise ValueError("'ca_file' applies to S3 stores (url) only")
        elif self.lock_mode is not None or self.maintenance_credentials_file is not None:
            raise ValueError(
                "'lock_mode' and 'maintenance_credentials_file' apply to S3 stores (url) only")
        return self

    @property
    def is_s3(self) -> bool:
        return self.url is not None
