"""[[agencies]] with their verification and retention, and the whole Config."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from pydantic import Field, model_validator

from drbackup.config.models.base import (
    LOCAL_STORE,
    AbsolutePath,
    HostName,
    Identifier,
    Schedule,
    StrictModel,
)
from drbackup.config.models.daemon import DaemonConfig
from drbackup.config.models.fleet import FleetConfig
from drbackup.config.models.guard import GuardConfig
from drbackup.config.models.offline import OfflineConfig
from drbackup.config.models.sources import Source
from drbackup.config.models.stores import StoreConfig
from drbackup.config.units import ByteSize, Duration
from drbackup.errors import NotFoundError


class VerifyConfig(StrictModel):
    """How an agency's repository is checked and its restores drilled (drbackup verify)."""

    check_subsets: int = Field(
        30, ge=1, le=10000,
        description=(
            "N of the rotating 'restic check --read-data-subset=k/N': each data check reads the "
            "next k, so every pack is read once every N data checks."),
    )
    data_check_interval: Duration = Field(
        timedelta(hours=20),
        description=(
            "A scheduled check reads the next data subset when the last data check is at least "
            "this old; checks in between verify the repository structure only."),
    )
    check_schedule: Schedule | None = Field(
        "daily 03:30",
        description="When the daemon checks the repository (same forms as a source schedule).",
    )
    drill_schedule: Schedule | None = Field(
        "daily 04:30",
        description="When the daemon runs restore drills of every source of the agency.",
    )
    drill_max_bytes: ByteSize = Field(
        256 * 1024**2,
        description=(
            "A file drill restores the whole latest snapshot when it holds at most this many "
            "bytes, else a sample of files."),
        examples=["256MiB"],
    )
    drill_sample_files: int = Field(
        50, ge=1, le=2000,
        description=(
            "Files restored by a sampling drill: the largest and newest files plus a random "
            "choice of the rest (each is a restic --include argument, hence the limit)."),
    )


class RetentionConfig(StrictModel):
    """Which snapshots `drbackup forget` keeps. keep_within is a mandatory floor: every snapshot
    younger than it (relative to the newest snapshot) survives, so a burst of junk snapshots
    cannot push real ones out of the hourly/daily/... buckets."""

    keep_within: Duration = Field(
        description="Keep every snapshot newer than this, relative to the newest snapshot.",
        examples=["30d"],
    )
    keep_hourly: int | None = Field(
        None, ge=1, description="Keep the last N hourly snapshots.", examples=[48])
    keep_daily: int | None = Field(
        None, ge=1, description="Keep the last N daily snapshots.", examples=[14])
    keep_weekly: int | None = Field(
        None, ge=1, description="Keep the last N weekly snapshots.", examples=[8])
    keep_monthly: int | None = Field(
        None, ge=1, description="Keep the last N monthly snapshots.", examples=[24])
    keep_yearly: int | None = Field(
        None, ge=1, description="Keep the last N yearly snapshots.", examples=[10])
    schedule: str = Field(
        "daily 05:30",
        description="When the daemon applies this policy (forget); same syntax as a source's "
                    "schedule.")
    prune_schedule: str | None = Field(
        "30 6 * * 0",
        description="When the daemon prunes (maintenance credentials; never during a backup of "
                    "the same repository). Unset: only 'drbackup prune' prunes.")




class AgencyConfig(StrictModel):
    id: Identifier = Field(
        description="Agency id; its repository is <store>/<id>.", examples=["planning"])
    password_file: AbsolutePath = Field(
        description=(
            "File holding this agency's repository password; mode 0600 or stricter. "
            "${CREDENTIALS_DIRECTORY} is expanded (systemd LoadCredential=)."
        ),
        examples=["/etc/drbackup/planning.password"],
    )
    store: Identifier = Field(
        LOCAL_STORE,
        description="Name of the store holding the primary repository.",
        examples=["offsite"],
    )
    replicas: list[Identifier] = Field(
        default_factory=list, description="Stores that receive copies of every snapshot."
    )
    replicate_schedule: str | None = Field(
        "hourly",
        description="Safety-net schedule for copying to the replicas (the daemon also copies "
                    "after every successful backup). Unset: only after backups.")
    rpo: Duration = Field(
        timedelta(hours=24), description="Recovery point objective: the most data we may lose."
    )
    rto: Duration = Field(
        timedelta(hours=24), description="Recovery time objective: the longest a restore may take."
    )
    verify_max_age: Duration = Field(
        timedelta(days=8),
        description=(
            "Longest time without a successful verification (check or restore drill) of this "
            "agency before the DrBackupVerifyOverdue alert fires (exported as "
            "drbackup_verify_max_age_seconds)."
        ),
    )
    sources: list[Source] = Field(default_factory=list, description="What to back up.")
    verify: VerifyConfig = Field(
        default_factory=VerifyConfig,
        description="Integrity checks and restore drills of this agency ([agencies.verify]).",
    )
    guard: GuardConfig = Field(
        default_factory=GuardConfig,
        description="The ransomware guard of this agency's directory sources ([agencies.guard]).",
    )
    offline: OfflineConfig | None = Field(
        None,
        description=(
            "Offline copies on removable media ([agencies.offline], 'drbackup media'); unset: "
            "the agency has none and no offline-copy alert."),
    )
    retention: RetentionConfig | None = Field(
        None,
        description=(
            "Which snapshots 'drbackup forget' keeps (unset: snapshots are never forgotten). "
            "Applied to the primary and to every replica."
        ),
    )

    required_level: int | None = Field(
        None, ge=1, le=6,
        description=(
            "The GB/T 20988 level this agency must meet (the city's classification of it). "
            "Its published summary (drbackup fleet) is failing while the measured level is "
            "lower; a city inventory given to 'drbackup fleet report --expect' overrides it. "
            "Unset: any measured level counts as meeting."),
        examples=[2],
    )

    maintenance_host: HostName | None = Field(
        None,
        description=(
            "The one host (its daemon.hostname, the host name its snapshots carry) that does "
            "this agency's maintenance: forget, prune and the rotating repository check. Every "
            "other host only backs up its own sources and drills them, and never takes restic's "
            "exclusive lock on the agency's repository. Set it, to the same name, on every "
            "host that backs up a source of the agency (docs/multi-host.md). Unset: this host "
            "does the maintenance, unless the repository records another host as its owner."),
        examples=["records-host-01"],
    )

    @model_validator(mode="after")
    def _unique_sources(self) -> AgencyConfig:
        seen: set[str] = set()
        for source in self.sources:
            if source.id in seen:
                raise ValueError(f"source id {source.id!r} is used twice in agency {self.id!r}")
            seen.add(source.id)
        if self.store in self.replicas:
            raise ValueError(f"store {self.store!r} is both the primary and a replica")
        return self

    def source(self, source_id: str) -> Source:
        for source in self.sources:
            if source.id == source_id:
                return source
        known = ", ".join(s.id for s in self.sources) or "none"
        raise NotFoundError(
            f"agency {self.id!r} has no source {source_id!r}", f"known sources: {known}"
        )


class Config(StrictModel):
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    stores: dict[Identifier, StoreConfig] = Field(
        default_factory=dict,
        description=(
            "Named stores. Without a store named 'local', one exists implicitly at "
            "<state_dir>/repos: the embedded default."
        ),
    )
    agencies: list[AgencyConfig] = Field(default_factory=list)
    fleet: FleetConfig = Field(
        default_factory=FleetConfig,
        description="The signed status summary published for the city's report ([fleet]).",
    )

    @model_validator(mode="after")
    def _cross_references(self) -> Config:
        # Messages start with the key path: a model-level error has no location of its own.
        seen: set[str] = set()
        for index, agency in enumerate(self.agencies):
            if agency.id in seen:
                raise ValueError(f"agencies[{index}].id: agency id {agency.id!r} is used twice")
            seen.add(agency.id)
            for key, name in [("store", agency.store), *(
                    (f"replicas[{i}]", r) for i, r in enumerate(agency.replicas))]:
                if name not in self.stores and name != LOCAL_STORE:
                    known = ", ".join(sorted({*self.stores, LOCAL_STORE}))
                    raise ValueError(
                        f"agencies[{index}].{key}: agency {agency.id!r} names unknown store "
                        f"{name!r} (known: {known})"
                    )
        self._check_nested_stores()
        return self

    def _check_nested_stores(self) -> None:
        """Local stores must not lie inside one another: with store B's path inside store A's,
        an agency's repository <B>/<x> sits inside A's agency repository (or directory) and one
        agency's backups, retention or a lock file there could touch another's."""
        used = {agency.store for agency in self.agencies} | {
            r for agency in self.agencies for r in agency.replicas}
        paths = [(name, os.path.normpath(store.path)) for name, store in self.stores.items()
                 if store.path is not None]
        if LOCAL_STORE not in self.stores and LOCAL_STORE in used:
            paths.append((LOCAL_STORE, os.path.normpath(self.daemon.state_dir / "repos")))
        for outer, outer_path in paths:
            for inner, inner_path in paths:
                if outer == inner:
                    continue
                if inner_path == outer_path or inner_path.startswith(outer_path.rstrip("/") + "/"):
                    where = inner_path[len(outer_path):].strip("/").split("/")[0]
                    what = (f"inside the repository of agency {where!r} there" if where in {
                        a.id for a in self.agencies} else "inside it")
                    relation = f"inside store {outer!r} ({outer_path}), {what}" if where else (
                        f"the same as store {outer!r}")
                    raise ValueError(
                        f"stores.{inner}.path: {inner_path} is {relation}: give each store a "
                        "directory of its own, not nested in another")

    def store(self, name: str) -> StoreConfig:
        """The named store; 'local' falls back to the embedded default under the state dir."""
        if name in self.stores:
            return self.stores[name]
        if name == LOCAL_STORE:
            return StoreConfig(path=self.daemon.state_dir / "repos")
        raise NotFoundError(f"no store {name!r} in the config")

    def host_name(self) -> str:
        """This host's name as its snapshots record it (restic --host)."""
        return self.daemon.hostname or socket.gethostname()

    def owns_maintenance(self, agency: AgencyConfig) -> bool:
        """Whether this host's config makes it the agency's maintenance owner (the repository
        may still name another: drbackup/jobs/maintenance.py)."""
        return agency.maintenance_host in (None, self.host_name())

    def agency(self, agency_id: str) -> AgencyConfig:
        for agency in self.agencies:
            if agency.id == agency_id:
                return agency
        known = ", ".join(a.id for a in self.agencies) or "none"
        raise NotFoundError(f"no agency {agency_id!r} in the config", f"known agencies: {known}")
