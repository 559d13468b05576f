"""[fleet]: the signed status summary this host publishes into its agencies' stores (#20), read
by `drbackup fleet report` on any machine holding the hosts' public keys (docs/fleet.md)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator

from drbackup.config.models.base import Schedule, StrictModel
from drbackup.config.units import Duration


class FleetConfig(StrictModel):
    """When the daemon publishes its signed summary, and how long a reader may believe it."""

    publish_schedule: Schedule | None = Field(
        "every 15m",
        description=(
            "When the daemon writes its signed summary of every agency into each of the "
            "agency's stores (<store>/<agency>/fleet/<host>.json); it also publishes at "
            "start and after every change of an agency's verdict, level or findings. Unset: "
            "only at start, on verdict changes and by 'drbackup fleet publish'."),
    )
    valid_for: Duration = Field(
        timedelta(hours=1),
        description=(
            "How long after publishing a summary counts as current: a reader shows an older "
            "one as stale (the host stopped, or cannot reach the store). Keep it a few times "
            "publish_schedule's interval."),
    )
    history_window: Duration = Field(
        timedelta(days=30),
        description=(
            "How far back each source's history in the summary reaches (the city report's "
            "charts): the worst RPO of each of 30 equal slices of it, and its newest 30 drills. "
            "From 1d to 366d."),
    )

    @field_validator("history_window")
    @classmethod
    def _window(cls, value: timedelta) -> timedelta:
        if not timedelta(days=1) <= value <= timedelta(days=366):
            raise ValueError("history_window must be from 1d to 366d")
        return value
