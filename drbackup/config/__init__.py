"""Typed configuration: models, loading and the example file."""

from drbackup.config.loader import (
    ConfigInvalid,
    ConfigProblem,
    load_config,
    parse_config,
    resolve_config_path,
)
from drbackup.config.models import (
    LOCAL_STORE,
    AgencyConfig,
    Config,
    DaemonConfig,
    DirectorySource,
    Source,
    StoreConfig,
)

__all__ = [
    "LOCAL_STORE",
    "AgencyConfig",
    "Config",
    "ConfigInvalid",
    "ConfigProblem",
    "DaemonConfig",
    "DirectorySource",
    "Source",
    "StoreConfig",
    "load_config",
    "parse_config",
    "resolve_config_path",
]
