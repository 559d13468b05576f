"""[[restore_targets]]: database servers a restore may go to other than the source's own (the
disaster case: the agency's server is gone, a replacement stands by)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from drbackup.config.models.base import AbsolutePath, Identifier, StrictModel

RestoreTargetKind = Literal["postgres", "mysql"]
DEFAULT_PORTS: dict[str, int] = {"postgres": 5432, "mysql": 3306}


class RestoreTarget(StrictModel):
    """A PostgreSQL or MariaDB/MySQL server that `drbackup restore-db --target NAME` restores
    onto; the recovery kit carries these entries (and their passwords)."""

    name: Identifier = Field(description="Name given to restore-db --target.",
                             examples=["standby-pg"])
    kind: RestoreTargetKind = Field(
        description="Server kind: \"postgres\" or \"mysql\" (MariaDB or MySQL); restores of "
                    "sources of that kind only.")
    host: str = Field(
        description=(
            "Server host name or address (PostgreSQL: or the directory of its unix socket)."),
        examples=["db-standby.internal"])
    port: int | None = Field(
        None, ge=1, le=65535,
        description="Server TCP port; default 5432 (postgres) or 3306 (mysql).",
        examples=[5432])
    user: str = Field(
        description=(
            "User that restores; it owns nothing afterwards unless the dump's owner roles "
            "exist (PostgreSQL: restore the globals first, or restore with --no-owner)."),
        examples=["restore"])
    password_file: AbsolutePath | None = Field(
        None,
        description=(
            "File holding the user's password (mode 0600), handed to the client in a private "
            "PGPASSFILE or defaults file, never on the command line. Unset: peer/trust "
            "authentication."),
        examples=["/etc/drbackup/standby-pg.password"])
    @property
    def server_port(self) -> int:
        return self.port if self.port is not None else DEFAULT_PORTS[self.kind]

    def describe(self) -> str:
        """Where this target is, for output and the state database (no secret)."""
        return f"{self.user}@{self.host}:{self.server_port}"


def ad_hoc_target(kind: str, host: str, port: int | None, user: str,
                  password_file: Path | None) -> RestoreTarget:
    """A target given on the command line (--target-host ...); validated like a config entry.

    Raises pydantic.ValidationError."""
    return RestoreTarget.model_validate({
        "name": "command-line", "kind": kind, "host": host, "port": port, "user": user,
        "password_file": password_file})
