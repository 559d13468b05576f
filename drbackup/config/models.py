"""Typed configuration: the single source of truth for validation, defaults and the documented
example config (`drbackup config example` renders config/drbackup.example.toml from these models).

Each field's `description` is its documentation; `examples` give the value shown in the example
file when the default is not what a reader needs to see.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from drbackup.config.schedule import validate_schedule
from drbackup.config.units import ByteSize, Duration
from drbackup.errors import NotFoundError

# Always used with fullmatch: `re.match` with "$" accepts a trailing newline ("planning\n"),
# and ids become repository names, tags and directory names.
IDENTIFIER = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
LOCAL_STORE = "local"


def is_identifier(value: object) -> bool:
    """Whether `value` is a whole, valid id (agency, source, store): nothing before or after."""
    return isinstance(value, str) and IDENTIFIER.fullmatch(value) is not None


def _identifier(value: str) -> str:
    if not is_identifier(value):
        raise ValueError(
            f"{value!r} is not a valid id: use 1-63 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return value


def _absolute(value: Path) -> Path:
    if not value.is_absolute():
        raise ValueError(f"{str(value)!r} is not an absolute path")
    return value


Identifier = Annotated[str, AfterValidator(_identifier)]
AbsolutePath = Annotated[Path, AfterValidator(_absolute)]
Schedule = Annotated[str, AfterValidator(validate_schedule)]


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo must never silently disable a setting."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DaemonConfig(StrictModel):
    state_dir: AbsolutePath = Field(
        Path("/var/lib/drbackup"),
        description="Where the state database, locks and (by default) the local repositories live.",
    )
    cache_dir: AbsolutePath = Field(
        Path("/var/cache/drbackup"), description="restic's cache (RESTIC_CACHE_DIR)."
    )
    metrics_listen: str = Field(
        "127.0.0.1:9917", description="host:port of the Prometheus /metrics endpoint."
    )
    restic: str = Field("restic", description="The restic binary: a name on PATH or a path.")
    hostname: str | None = Field(
        None,
        description="Host name recorded in snapshots; default: this machine's host name.",
        examples=["records-host-01"],
    )
    max_concurrent_jobs: int = Field(
        2, ge=1, le=64, description="Jobs (restic processes) running at once across all agencies."
    )
    restic_timeout: Duration = Field(
        timedelta(hours=6), description="Wall-clock limit of one restic run before it is stopped."
    )
    lock_wait: Duration = Field(
        timedelta(minutes=2),
        description=(
            "How long a restic run waits for a repository lock held by another live process "
            "(restic --retry-lock) before failing with exit 11; e.g. a one-shot 'drbackup "
            "verify' or 'restore' while the daemon is pruning. Stale locks (their process is "
            "gone) never cost this wait: a run that meets a lock first removes stale locks "
            "with 'restic unlock', then waits for live ones only. \"0s\" fails at once."),
        examples=["2m"],
    )
    stop_grace: Duration = Field(
        timedelta(seconds=60),
        description="On shutdown, how long a running job may finish before restic is stopped.",
    )
    poll_interval: Duration = Field(
        timedelta(minutes=5),
        description=(
            "How often a source that cannot be watched with inotify (watch limit reached) is "
            "scanned for changes instead; 0s: no scanning, its schedule and reconciliation "
            "runs only."
        ),
    )
    schedule_jitter: Duration = Field(
        timedelta(minutes=10),
        description=(
            "Largest delay added to scheduled runs, fixed per source (a hash of its name), so "
            "50 agencies on 'daily 02:00' do not all start at once. At most a tenth of the "
            "schedule's interval is used."
        ),
    )
    metrics_tls_cert_file: AbsolutePath | None = Field(
        None,
        description=(
            "PEM certificate (chain) for serving /metrics over HTTPS, e.g. "
            "/etc/drbackup/metrics.crt; needs metrics_tls_key_file. Unset: plain HTTP."
        ),
    )
    metrics_tls_key_file: AbsolutePath | None = Field(
        None,
        description="PEM private key of metrics_tls_cert_file; mode 0600 or stricter.",
    )
    metrics_basic_auth_user: str | None = Field(
        None,
        description=(
            "User name Prometheus must send (HTTP basic auth) to read /metrics, e.g. "
            "\"prometheus\"; needs metrics_basic_auth_password_file. Unset: no authentication."
        ),
    )
    metrics_basic_auth_password_file: AbsolutePath | None = Field(
        None,
        description=(
            "File holding the basic-auth password of metrics_basic_auth_user (one line); "
            "mode 0600 or stricter. ${CREDENTIALS_DIRECTORY} is expanded."
        ),
    )

    @model_validator(mode="after")
    def _metrics_pairs(self) -> DaemonConfig:
        if (self.metrics_tls_cert_file is None) != (self.metrics_tls_key_file is None):
            raise ValueError("metrics_tls_cert_file and metrics_tls_key_file go together: "
                             "set both for HTTPS or neither")
        if (self.metrics_basic_auth_user is None) != (
                self.metrics_basic_auth_password_file is None):
            raise ValueError("metrics_basic_auth_user and metrics_basic_auth_password_file go "
                             "together: set both for basic auth or neither")
        return self


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

    @model_validator(mode="after")
    def _one_kind(self) -> StoreConfig:
        if (self.url is None) == (self.path is None):
            raise ValueError("a store needs exactly one of 'url' (S3) or 'path' (local directory)")
        if self.url is not None:
            if not self.url.startswith("s3:http://") and not self.url.startswith("s3:https://"):
                raise ValueError(
                    f"url {self.url!r} must look like s3:https://host[:port]/bucket[/prefix]"
                )
            if self.credentials_file is None:
                raise ValueError("an S3 store needs 'credentials_file'")
        elif self.lock_mode is not None or self.maintenance_credentials_file is not None:
            raise ValueError(
                "'lock_mode' and 'maintenance_credentials_file' apply to S3 stores (url) only")
        return self

    @property
    def is_s3(self) -> bool:
        return self.url is not None


class SourceBase(StrictModel):
    id: Identifier = Field(description="Source id, unique within its agency; tags its snapshots.")
    schedule: Schedule | None = Field(
        None,
        description=(
            "When to back up besides file changes: 'hourly', 'daily 02:00', 'every 15m', "
            "or a 5-field cron expression."
        ),
        examples=["hourly"],
    )
    timeout: Duration = Field(
        timedelta(hours=6), description="Wall-clock limit of one backup of this source."
    )


class DirectorySource(SourceBase):
    kind: Literal["directory"] = Field(description="Files and folders on this host.")
    paths: list[AbsolutePath] = Field(
        min_length=1,
        description="Absolute paths to back up.",
        examples=[["/srv/planning/documents"]],
    )
    exclude: list[str] = Field(
        default_factory=list,
        description="restic exclude patterns.",
        examples=[["*.tmp", ".cache"]],
    )
    one_file_system: bool = Field(False, description="Do not cross filesystem boundaries.")
    watch: bool = Field(True, description="Back up soon after files change (inotify).")
    debounce: Duration = Field(
        timedelta(seconds=10), description="Quiet period after the last change before a backup."
    )
    max_delay: Duration = Field(
        timedelta(minutes=5),
        description="Longest a change waits while the tree keeps changing.",
    )


def _no_password_in_dsn(value: str) -> str:
    lowered = value.lower()
    if re.search(r"(^|\s)password\s*=", lowered) or re.match(r"^postgres(ql)?://[^/@]*:[^/@]*@",
                                                              lowered):
        raise ValueError(
            "the dsn must not contain a password (it would show in process lists): put the "
            "password in password_file, a passfile or a service file")
    return value


DrillTarget = Literal["same-server", "local-instance"]
SAME_SERVER = "same-server"
LOCAL_INSTANCE = "local-instance"
_PG_AS_ROOT = (" PostgreSQL refuses root: when drbackup runs as root the instance runs as the "
               "owner of state_dir, and a root-owned state_dir is an error.")


def _drill_target_field(engine: str, package: str, same_server: str, note: str = ""
                        ) -> DrillTarget:
    return Field(
        "same-server",
        description=(
            f"Where restore drills restore the dump: \"same-server\" ({same_server}) or "
            f"\"local-instance\": a throwaway {engine} started for the drill in a private "
            "directory under state_dir, reachable only through a unix socket there (no TCP "
            "port, no password), stopped and removed afterwards; the source's server sees "
            f"nothing. Needs the {package} package on this host.{note}"),
    )


class DumpSourceBase(SourceBase):
    """What every database dump source shares: a minimum plausible size of the dump."""

    min_size: ByteSize = Field(
        1024,
        description=(
            "Smallest plausible dump; a smaller one fails the run and makes no snapshot "
            "(e.g. '1KiB', '10MB')."),
    )
    assertions: list[str] = Field(
        default_factory=list, alias="assert",
        description=(
            "Restore drills: SQL run in the scratch copy of the database; each must return "
            "true (key: assert)."),
        examples=[["SELECT count(*) > 0 FROM permits"]],
    )


class PostgresSource(DumpSourceBase):
    kind: Literal["postgres"] = Field(
        description="A PostgreSQL database (or every database of a server), dumped with pg_dump.")
    dsn: Annotated[str, AfterValidator(_no_password_in_dsn)] = Field(
        description=(
            "libpq connection string or URI without password, naming the database to dump "
            "(with all = true: the database to connect to for listing the others)."),
        examples=["postgresql://backup@db.internal:5432/permits"],
    )
    all: bool = Field(
        False,
        description=(
            "Dump every database of the server (one snapshot each, tagged database=<name>) "
            "plus the roles and tablespaces (pg_dumpall --globals-only)."),
    )
    exclude_databases: list[str] = Field(
        default_factory=list, description="With all = true: databases not to dump.")
    globals: bool = Field(
        True, description="With all = true: also dump roles and tablespaces (needs superuser).")
    password_file: AbsolutePath | None = Field(
        None,
        description=(
            "File holding the database password (mode 0600); drbackup writes a private "
            "PGPASSFILE for each run from it. Leave unset to use passfile, service_file or "
            "peer authentication."),
        examples=["/etc/drbackup/permits-db.password"],
    )
    passfile: AbsolutePath | None = Field(
        None, description="Your own libpq password file (.pgpass format, mode 0600).")
    service_file: AbsolutePath | None = Field(
        None,
        description="A libpq service file (PGSERVICEFILE) for a dsn like 'service=permits'.")
    compression: int = Field(
        0, ge=0, le=9,
        description=(
            "pg_dump -Z level. 0 (default) leaves compression to restic, whose deduplication "
            "then stores only the changed parts of each new dump."),
    )
    bin_dir: AbsolutePath | None = Field(
        None,
        description=(
            "Directory of pg_dump, pg_dumpall, pg_restore and psql matching the server's major "
            "version; default: found on PATH."),
        examples=["/usr/lib/postgresql/16/bin"],
    )
    drill_target: DrillTarget = _drill_target_field(
        "PostgreSQL (the newest installed /usr/lib/postgresql/*/bin)", "postgresql",
        "a scratch database on the source's server; its user needs CREATEDB",
        _PG_AS_ROOT)

    @model_validator(mode="after")
    def _one_password_source(self) -> PostgresSource:
        if self.password_file is not None and self.passfile is not None:
            raise ValueError("give either password_file or passfile, not both")
        return self


class MysqlSource(DumpSourceBase):
    kind: Literal["mysql"] = Field(
        description="A MySQL or MariaDB database, dumped with mariadb-dump/mysqldump.")
    database: str = Field(description="Database to dump.", examples=["licences"])
    host: str = Field("localhost", description="Server host name or address.")
    port: int = Field(3306, ge=1, le=65535, description="Server TCP port.")
    socket: AbsolutePath | None = Field(
        None, description="Unix socket of the server (instead of host and port).")
    user: str = Field("root", description="Database user.", examples=["backup"])
    password_file: AbsolutePath | None = Field(
        None,
        description=(
            "File holding the user's password (mode 0600); drbackup passes it in a private "
            "defaults file, never on the command line."),
        examples=["/etc/drbackup/licences-db.password"],
    )
    dump_binary: str | None = Field(
        None,
        description="Dump program; default: mariadb-dump when installed, else mysqldump.")
    client_binary: str | None = Field(
        None, description="Client used by restore-db; default: mariadb when installed, else mysql.")
    drill_target: DrillTarget = _drill_target_field(
        "MariaDB server (mariadbd)", "mariadb-server",
        "a scratch database on the source's server; its user needs CREATE and DROP")


class SqliteSource(DumpSourceBase):
    kind: Literal["sqlite"] = Field(
        description=(
            "A SQLite database file, copied consistently with SQLite's online backup API "
            "while applications keep writing."))
    path: AbsolutePath = Field(
        description="The database file.", examples=["/srv/registry/registry.sqlite"])
    min_size: ByteSize = Field(
        512, description="Smallest plausible copy; a smaller one fails the run.")


class DumpdirSource(SourceBase):
    kind: Literal["dumpdir"] = Field(
        description=(
            "A folder where the agency's own jobs drop dump files; a file is backed up once, "
            "only when complete."))
    path: AbsolutePath = Field(
        description="The drop folder.", examples=["/srv/finance/dumps"])
    pattern: str = Field(
        "*", description="Glob of the dump files in the folder.", examples=["*.sql.gz"])
    settle: Duration = Field(
        timedelta(minutes=1),
        description=(
            "A file is complete when its size and modification time have not changed for this "
            "long (ignored when marker = true)."),
    )
    marker: bool = Field(
        False,
        description="A file is complete only when '<name>.done' exists beside it.",
    )
    per_file: bool = Field(
        True,
        description=(
            "Each new dump becomes its own snapshot tagged file=<name>; false: new dumps are "
            "backed up together in one snapshot of the folder."),
    )
    min_size: ByteSize = Field(
        0,
        description=(
            "Files smaller than this are never taken (e.g. a truncated dump); each run "
            "names them in a warning. Empty files are never taken."),
    )
    max_files: int = Field(
        100, ge=1,
        description=(
            "At most this many files are taken per run; the rest is taken by the next runs "
            "(a folder of thousands of tiny files cannot hold a job slot for hours)."),
    )
    max_bytes: ByteSize = Field(
        200 << 30, ge=1,
        description=(
            "At most this many bytes per run, counting each file's size or its allocated "
            "blocks, whichever is larger; the rest is taken by the next runs. A single file "
            "larger than this is never taken (logged)."),
        examples=["200GiB"],
    )
    drill_postgres_dsn: str | None = Field(
        None,
        description=(
            "Restore drills of the folder's PostgreSQL dumps (pg_dump custom or plain format): "
            "the server (DSN without password) where a throwaway database is created, "
            "restored into, checked and dropped. Unset: no database drill for this source. "
            "Give it a role with CREATEDB, not a superuser: the folder's dumps are the agency's "
            "files, and a dump restored by a superuser can run programs on the database server "
            "(COPY ... PROGRAM); or use drill_target = \"local-instance\"."),
        examples=["postgresql://drill@db.internal:5432/postgres"],
    )
    drill_password_file: AbsolutePath | None = Field(
        None, description="Password file (mode 0600) for drill_postgres_dsn.")
    drill_target: DrillTarget = _drill_target_field(
        "PostgreSQL (the newest installed /usr/lib/postgresql/*/bin) for the folder's "
        "PostgreSQL dumps", "postgresql",
        "the server named by drill_postgres_dsn; unset dsn: no drill", _PG_AS_ROOT)
    assertions: list[str] = Field(
        default_factory=list, alias="assert",
        description=(
            "Restore drills: SQL run in the scratch database; each must return true "
            "(key: assert)."),
        examples=[["SELECT count(*) > 0 FROM ledger"]],
    )

    @model_validator(mode="after")
    def _drill_server(self) -> DumpdirSource:
        if self.drill_target == LOCAL_INSTANCE and self.drill_postgres_dsn is not None:
            raise ValueError(
                "drill_postgres_dsn names the server of same-server drills: with drill_target "
                "= \"local-instance\" leave it (and drill_password_file) unset")
        return self

    @property
    def has_db_drill(self) -> bool:
        """Whether the folder's dumps are restore-drilled (a server to restore them into)."""
        return self.drill_target == LOCAL_INSTANCE or self.drill_postgres_dsn is not None


Source = Annotated[
    DirectorySource | PostgresSource | MysqlSource | SqliteSource | DumpdirSource,
    Field(discriminator="kind"),
]


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
    retention: RetentionConfig | None = Field(
        None,
        description=(
            "Which snapshots 'drbackup forget' keeps (unset: snapshots are never forgotten). "
            "Applied to the primary and to every replica."
        ),
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

    def agency(self, agency_id: str) -> AgencyConfig:
        for agency in self.agencies:
            if agency.id == agency_id:
                return agency
        known = ", ".join(a.id for a in self.agencies) or "none"
        raise NotFoundError(f"no agency {agency_id!r} in the config", f"known agencies: {known}")


__all__ = [
    "LOCAL_INSTANCE",
    "LOCAL_STORE",
    "SAME_SERVER",
    "AgencyConfig",
    "ByteSize",
    "Config",
    "DaemonConfig",
    "DirectorySource",
    "DrillTarget",
    "DumpSourceBase",
    "DumpdirSource",
    "MysqlSource",
    "PostgresSource",
    "RetentionConfig",
    "Source",
    "SourceBase",
    "SqliteSource",
    "StoreConfig",
    "VerifyConfig",
    "is_identifier",
]
