"""What every job needs: the config, the restic engine, the state database, and the mapping from
an agency and a store name to a repository target."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from drbackup.config.models import AgencyConfig, Config, StoreConfig
from drbackup.engine import RepoTarget, Restic, ResticSettings
from drbackup.media.layout import repository
from drbackup.state import StateDB
from drbackup.state.health import record_store_health
from drbackup.store import S3Location, read_credentials_file
from drbackup.store.errors import StoreError

if TYPE_CHECKING:
    from drbackup.media.opened import OpenedMedium  # cryptography: loaded only for a medium
    from drbackup.store import S3Store, StoreHealth

STATE_FILE = "state.db"
VERSION_MEMO_FILE = "restic-version.json"


def restic_for(config: Config) -> Restic:
    daemon = config.daemon
    return Restic(ResticSettings(binary=daemon.restic, cache_dir=daemon.cache_dir,
                                 timeout=daemon.restic_timeout,
                                 retry_lock=daemon.lock_wait or None,
                                 version_memo=daemon.state_dir / VERSION_MEMO_FILE))


@dataclass
class Runtime:
    config: Config
    restic: Restic
    _state: StateDB | None = field(default=None, repr=False)
    _stores: dict[str, S3Store] = field(default_factory=dict, repr=False)
    # `--from-media DIR` (#19 §4): the medium replaces every store for this runtime; set by
    # jobs.media_read.open_medium once the agency's part of the medium has been checked.
    medium: OpenedMedium | None = None

    @classmethod
    def create(cls, config: Config) -> Runtime:
        return cls(config=config, restic=restic_for(config))

    @property
    def hostname(self) -> str:
        return self.config.host_name()

    @property
    def state(self) -> StateDB:
        if self._state is None:
            self._state = StateDB(self.config.daemon.state_dir / STATE_FILE)
        return self._state

    def close(self) -> None:
        if self._state is not None:
            self._state.close()
            self._state = None

    def store_config(self, name: str) -> StoreConfig:
        return self.config.store(name)

    def s3_store(self, name: str, *, maintenance: bool = False) -> S3Store | None:
        """The boto3 door to a named store, or None for a local store."""
        store = self.store_config(name)
        if store.url is None:
            return None
        key = f"{name}:{'maintenance' if maintenance else 'daily'}"
        if key not in self._stores:
            credentials_file = self._credentials_file(store, maintenance)
            assert credentials_file is not None
            from drbackup.store import S3Store  # boto3 loads only when an S3 store is used

            self._stores[key] = S3Store(name, S3Location.parse(store.url),
                                        read_credentials_file(credentials_file), store.region,
                                        ca_file=store.ca_file)
        return self._stores[key]

    @staticmethod
    def _credentials_file(store: StoreConfig, maintenance: bool) -> Path | None:
        if maintenance:
            special = getattr(store, "maintenance_credentials_file", None)
            if isinstance(special, Path):
                return special
        return store.credentials_file

    def target(self, agency: AgencyConfig, store_name: str | None = None, *,
               maintenance: bool = False) -> RepoTarget:
        """The repository of `agency` in `store_name` (default: its primary store)."""
        if self.medium is not None:
            self.medium.require_agency(agency.id)
            return RepoTarget(str(repository(self.medium.root, agency.id)), agency.password_file,
                              label=f"{agency.id}@medium {self.medium.label}", no_lock=True)
        name = store_name or agency.store
        store = self.store_config(name)
        label = f"{agency.id}@{name}"
        limit = max(1, store.limit_upload // 1024) if store.limit_upload else None
        down = max(1, store.limit_download // 1024) if store.limit_download else None
        if store.path is not None:
            return RepoTarget(str(store.path / agency.id), agency.password_file, label=label,
                              limit_upload_kib=limit, limit_download_kib=down)
        assert store.url is not None
        location = S3Location.parse(store.url).child(agency.id)
        credentials_file = self._credentials_file(store, maintenance)
        assert credentials_file is not None
        credentials = read_credentials_file(credentials_file)
        return RepoTarget(location.restic_url, agency.password_file,
                          backend_env=credentials.restic_env(store.region), label=label,
                          limit_upload_kib=limit, limit_download_kib=down,
                          ca_file=store.ca_file)

    def check_store(self, name: str) -> StoreHealth | None:
        """Reach an S3 store with boto3 before restic is started, so an endpoint that is down
        or credentials that are wrong give a clear error fast (restic would retry for minutes).
        None for local stores and a medium."""
        if self.medium is not None:
            return None
        store = self.s3_store(name)
        if store is None:
            return None
        try:
            health = store.check()
        except StoreError as exc:
            record_store_health(self.state, name, up=False, error=exc.one_line(),
                                exit_code=int(exc.exit_code))
            raise
        record_store_health(self.state, name, up=True, latency_seconds=health.latency_seconds)
        return health
