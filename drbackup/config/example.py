"""Render the documented example config from the models: each key with its description as a
comment and its example or default as the value. config/drbackup.example.toml is this output
(a test fails when they drift apart)."""

from __future__ import annotations

import json
import textwrap
import typing
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from drbackup.config.models import (
    AgencyConfig,
    Config,
    DaemonConfig,
    FleetConfig,
    GuardConfig,
    RetentionConfig,
    Source,
    StoreConfig,
    VerifyConfig,
)
from drbackup.config.units import format_duration

HEADER = """\
# drbackup configuration: every key, with its meaning and its default or an example.
# Generated from the typed models by `drbackup config example`; do not edit by hand.
# Check a config with: drbackup --config PATH config check
"""


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, timedelta):
        return json.dumps(format_duration(value))
    if isinstance(value, Path):
        return json.dumps(str(value))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def _value(info: FieldInfo) -> tuple[bool, Any]:
    """(known, value): the example when there is one, else the default."""
    if info.examples:
        return True, info.examples[0]
    if info.default is not PydanticUndefined and info.default is not None:
        return True, info.default
    if info.default_factory is not None:
        return True, info.default_factory()  # type: ignore[call-arg]
    return False, None


def _comment(text: str, indent: str) -> list[str]:
    return [f"{indent}# {line}" for line in textwrap.wrap(text, 96 - len(indent))]


def _fields(model: type[BaseModel], indent: str = "", *, skip: frozenset[str] = frozenset(),
            overrides: dict[str, Any] | None = None, comment_out: frozenset[str] = frozenset()
            ) -> list[str]:
    lines: list[str] = []
    overrides = overrides or {}
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        if info.description:
            required = " Required." if info.is_required() else ""
            lines += _comment(info.description + required, indent)
        known, value = (True, overrides[name]) if name in overrides else _value(info)
        key = info.alias or name  # e.g. "assert", a Python keyword
        if not known or name in comment_out:
            shown = _toml(value) if known else '"..."'
            lines.append(f"{indent}# {key} = {shown}")
        else:
            lines.append(f"{indent}{key} = {_toml(value)}")
    return lines


def source_kinds() -> list[type[BaseModel]]:
    annotated = typing.get_args(Source)
    inner = annotated[0] if annotated else Source
    members = typing.get_args(inner) or (inner,)
    return [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]


def render_example() -> str:
    lines = [HEADER.rstrip("\n"), ""]
    lines.append("[daemon]")
    lines += _fields(DaemonConfig)
    lines.append("")
    lines += _comment(Config.model_fields["fleet"].description or "", "")
    lines.append("[fleet]")
    lines += _fields(FleetConfig)
    lines.append("")
    lines += _comment(Config.model_fields["stores"].description or "", "")
    lines.append("[stores.offsite]")
    lines += _fields(StoreConfig, skip=frozenset({"path"}))
    lines.append("")
    lines.append("[stores.archive]")
    lines += _fields(StoreConfig, skip=frozenset({"url", "credentials_file", "region",
                                                  "create_bucket", "maintenance_credentials_file",
                                                  "lock_mode", "lock_days"}),
                     overrides={"path": Path("/srv/backup-disk/drbackup")})
    lines.append("")
    lines.append("[[agencies]]")
    lines += _fields(AgencyConfig, skip=frozenset({"sources", "verify", "retention", "guard"}),
                     overrides={"replicas": ["archive"]})
    lines.append("")
    lines += _comment(AgencyConfig.model_fields["verify"].description or "", "  ")
    lines.append("  [agencies.verify]")
    lines += _fields(VerifyConfig, "  ")
    lines.append("")
    lines += _comment(AgencyConfig.model_fields["retention"].description or "", "  ")
    lines.append("  [agencies.retention]")
    lines += _fields(RetentionConfig, "  ")
    lines.append("")
    lines += _comment(AgencyConfig.model_fields["guard"].description or "", "  ")
    lines.append("  [agencies.guard]")
    lines += _fields(GuardConfig, "  ")
    for model in source_kinds():
        kind = typing.get_args(model.model_fields["kind"].annotation)[0]
        lines.append("")
        lines.append("  [[agencies.sources]]")
        lines += _fields(model, "  ", overrides={"kind": kind, "id": _source_id(kind)})
    return "\n".join(lines) + "\n"


def _source_id(kind: str) -> str:
    return {"directory": "documents", "postgres": "permits-db", "mysql": "licences-db",
            "sqlite": "inspections-db", "dumpdir": "finance-dumps"}.get(kind, f"{kind}-1")
