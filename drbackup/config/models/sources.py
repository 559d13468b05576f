"""[[agencies.sources]]: directories, PostgreSQL, MariaDB/MySQL, SQLite and drop folders."""

from __future__ import annotations

import re
import urllib.parse
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from drbackup.config.models.base import AbsolutePath, Identifier, Schedule, StrictModel
from drbackup.config.models.dbargs import (
    MariadbDumpArgs,
    MariadbRestoreArgs,
    PgDumpArgs,
    PgRestoreArgs,
)
from drbackup.config.units import ByteSize, Duration


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


_PASSWORD_KEY = re.compile(r"(^|[\s?&])password\s*=")
DSN_PASSWORD_HINT = "put the password in password_file, a passfile or a service file"  # noqa: S105


def dsn_has_password(value: str) -> bool:
    """Whether a connection string carries a password: `user:password@` in a URI (postgresql://,
    mysql://, any scheme) or a `password=` key (libpq key/value, URI query). The one check for
    config dsn values and restore targets alike."""
    lowered = value.lower()
    if _PASSWORD_KEY.search(lowered):
        return True
    if "://" not in lowered:
        return False
    try:
        return urllib.parse.urlsplit(lowered).password is not None
    except ValueError:  # unparseable netloc (e.g. a broken IPv6 literal): the plain pattern
        return re.match(r"^[a-z][a-z0-9+.-]*://[^/@]*:[^/@]*@", lowered) is not None


def _no_password_in_dsn(value: str) -> str:
    if dsn_has_password(value):
        raise ValueError(
            "the dsn must not contain a password (it would show in process lists): "
            + DSN_PASSWORD_HINT)
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
    dump_args: PgDumpArgs = Field(
        default_factory=list,
        description=(
            "Extra pg_dump flags from an allow-list of flags that only change what is dumped "
            "(--no-comments, --exclude-table=PATTERN, --exclude-table-data=PATTERN, "
            "--exclude-schema=PATTERN, --no-publications, --no-subscriptions, "
            "--no-tablespaces, ...), each as one \"--flag\" or \"--flag=value\"; never "
            "connection, output or format flags (an error when the config is loaded)."),
        examples=[["--no-comments", "--exclude-table-data=audit_log"]],
    )
    restore_args: PgRestoreArgs = Field(
        default_factory=list,
        description=(
            "Extra pg_restore flags for restore-db and drills, from an allow-list "
            "(--no-comments, --no-publications, --no-subscriptions, --no-tablespaces, "
            "--no-security-labels, --disable-triggers, ...); not --jobs: the dump is "
            "streamed into pg_restore's stdin, where it cannot work in parallel."),
    )

    @model_validator(mode="after")
    def _one_password_source(self) -> PostgresSource:
        if self.password_file is not None and self.passfile is not None:
            raise ValueError("give either password_file or passfile, not both")
        return self


class MysqlSource(DumpSourceBase):
    kind: Literal["mysql"] = Field(
        description="A MySQL or MariaDB database, dumped with mariadb-dump/mysqldump.")
    database: str | None = Field(
        None, description="Database to dump (required unless all = true).",
        examples=["licences"])
    all: bool = Field(
        False,
        description=(
            "Dump every database of the server (one snapshot each, tagged database=<name>; "
            "not information_schema, performance_schema, sys, mysql) plus its users and grants "
            "(SHOW CREATE USER / SHOW GRANTS, snapshot database=_globals)."))
    exclude_databases: list[str] = Field(
        default_factory=list, description="With all = true: databases not to dump.")
    globals: bool = Field(
        True,
        description=(
            "With all = true: also dump the server's users and grants (every account but root, "
            "the system accounts and roles); the user needs SELECT on mysql.user."))
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
    dump_args: MariadbDumpArgs = Field(
        default_factory=list,
        description=(
            "Extra mariadb-dump/mysqldump flags from an allow-list of flags that only change "
            "what is dumped (--skip-triggers, --skip-events, --ignore-table=DB.TABLE, "
            "--ignore-table-data=DB.TABLE, --skip-comments, --order-by-primary, ...), each "
            "as one \"--flag\" or \"--flag=value\"; never connection, output or "
            "command-running flags (an error when the config is loaded). --skip-comments "
            "leaves out the section headers restore-db --table needs."),
        examples=[["--ignore-table-data=licences.audit_log"]],
    )
    restore_args: MariadbRestoreArgs = Field(
        default_factory=list,
        description=(
            "Extra flags of the mariadb/mysql client replaying a dump, from an allow-list "
            "(--max-allowed-packet=SIZE, --net-buffer-length=SIZE, --show-warnings); never "
            "--force, --init-command or option files."),
    )

    @model_validator(mode="after")
    def _database_or_all(self) -> MysqlSource:
        if self.database is None and not self.all:
            raise ValueError("give the database to dump, or all = true for every database")
        return self


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
            "Restore drills of the folder's PostgreSQL dumps (pg_dump custom, tar, directory or "
            "plain SQL, optionally gzipped, told from their content): "
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
