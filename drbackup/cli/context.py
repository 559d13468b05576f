"""What a CLI command receives: its parsed arguments, output, and lazily the config and runtime."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from drbackup.cli.output import Output
from drbackup.config import Config, load_config, resolve_config_path
from drbackup.config.models import AgencyConfig
from drbackup.jobs.runtime import Runtime


@dataclass
class CliContext:
    args: argparse.Namespace
    out: Output
    _config: Config | None = field(default=None, repr=False)
    _runtime: Runtime | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(resolve_config_path(self.args.config))
        return self._config

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            self._runtime = Runtime.create(self.config)
        return self._runtime

    def agencies(self, agency_id: str | None) -> list[AgencyConfig]:
        """One agency by id, or all of them when none is named."""
        if agency_id:
            return [self.config.agency(agency_id)]
        return list(self.config.agencies)

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.close()
