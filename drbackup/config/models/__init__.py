"""Typed configuration: the single source of truth for validation, defaults and the documented
example config (`drbackup config example` renders config/drbackup.example.toml from these models).

Each field's `description` is its documentation; `examples` give the value shown in the example
file when the default is not what a reader needs to see.
"""

from drbackup.config.models.agency import AgencyConfig, Config, RetentionConfig, VerifyConfig
from drbackup.config.models.base import (
    HOST_NAME,
    IDENTIFIER,
    LOCAL_STORE,
    AbsolutePath,
    HostName,
    Identifier,
    Schedule,
    StrictModel,
    is_host_name,
    is_identifier,
)
from drbackup.config.models.daemon import DaemonConfig
from drbackup.config.models.fleet import FleetConfig
from drbackup.config.models.guard import GuardConfig
from drbackup.config.models.offline import OfflineConfig
from drbackup.config.models.sources import (
    LOCAL_INSTANCE,
    SAME_SERVER,
    DirectorySource,
    DrillTarget,
    DumpdirSource,
    DumpSourceBase,
    MysqlSource,
    PostgresSource,
    Source,
    SourceBase,
    SqliteSource,
)
from drbackup.config.models.stores import StoreConfig
from drbackup.config.units import ByteSize

__all__ = [
    "HOST_NAME", "IDENTIFIER", "LOCAL_INSTANCE", "LOCAL_STORE", "SAME_SERVER", "AbsolutePath",
    "AgencyConfig", "ByteSize", "Config", "DaemonConfig", "DirectorySource", "DrillTarget",
    "DumpSourceBase", "DumpdirSource", "FleetConfig", "GuardConfig", "HostName", "Identifier",
    "MysqlSource", "OfflineConfig", "PostgresSource", "RetentionConfig", "Schedule", "Source",
    "SourceBase", "SqliteSource", "StoreConfig", "StrictModel", "VerifyConfig", "is_host_name",
    "is_identifier",
]
