"""Ids, absolute paths, schedules and the strict base every config model shares."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from drbackup.config.schedule import validate_schedule

# Always used with fullmatch: `re.match` with "$" accepts a trailing newline ("planning\n"),
# and ids become repository names, tags and directory names.
IDENTIFIER = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
LOCAL_STORE = "local"
# A host name as restic records it (--host): a DNS name or a short one. Read back from a
# repository (snapshots, maintenance claims) it is hostile and must fully match before it is
# shown or compared.
HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,251}[A-Za-z0-9])?")


def is_identifier(value: object) -> bool:
    """Whether `value` is a whole, valid id (agency, source, store): nothing before or after."""
    return isinstance(value, str) and IDENTIFIER.fullmatch(value) is not None


def _identifier(value: str) -> str:
    if not is_identifier(value):
        raise ValueError(
            f"{value!r} is not a valid id: use 1-63 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return value


def is_host_name(value: object) -> bool:
    """Whether `value` is a whole, valid host name (letters, digits, '.', '-', '_')."""
    return isinstance(value, str) and HOST_NAME.fullmatch(value) is not None


def _host_name(value: str) -> str:
    if not is_host_name(value):
        raise ValueError(
            f"{value[:80]!r} is not a valid host name: use letters, digits, '.', '-' or '_', "
            "starting and ending with a letter or digit (at most 253)")
    return value


def _absolute(value: Path) -> Path:
    if not value.is_absolute():
        raise ValueError(f"{str(value)!r} is not an absolute path")
    return value


Identifier = Annotated[str, AfterValidator(_identifier)]
HostName = Annotated[str, AfterValidator(_host_name)]
AbsolutePath = Annotated[Path, AfterValidator(_absolute)]
Schedule = Annotated[str, AfterValidator(validate_schedule)]


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo must never silently disable a setting."""

    model_config = ConfigDict(extra="forbid", frozen=True)
