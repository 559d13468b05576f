"""The tags that tie a snapshot to its agency and source."""

from __future__ import annotations

from drbackup.config.models import AgencyConfig, Source


def snapshot_tags(agency: AgencyConfig, source: Source) -> list[str]:
    return [f"agency={agency.id}", f"source={source.id}", f"kind={source.kind}"]


def agency_tag(agency_id: str) -> str:
    return f"agency={agency_id}"


def source_filter(agency_id: str, source_id: str | None) -> list[str]:
    tags = [agency_tag(agency_id)]
    if source_id:
        tags.append(f"source={source_id}")
    return tags
