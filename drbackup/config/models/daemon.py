"""The [daemon] table: where state lives, how restic runs, metrics, notifications."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import Field, model_validator

from drbackup.config.models.base import AbsolutePath, StrictModel
from drbackup.config.units import Duration


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
