"""What a partial restore (`restore-db --schema` / `--table`) asks for: names checked against
identifier rules before they are compared with anything in a dump. They never reach a shell
or SQL text: PostgreSQL's are matched against the dump's table of contents
(drbackup/sources/pgtoc.py), MariaDB's against the dump's section headers
(drbackup/sources/dumpsections.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from drbackup.errors import UsageError

# A letter (any script) or _, then letters, digits, _ or $: an identifier that needs no
# quoting in PostgreSQL or MariaDB, at most 63 bytes (PostgreSQL's NAMEDATALEN - 1).
_NAME = re.compile(r"[^\W\d][\w$]*")
MAX_NAME_BYTES = 63


def check_name(value: str, flag: str) -> str:
    """`value` when it is a plain identifier; else UsageError in one line."""
    if not _NAME.fullmatch(value) or len(value.encode("utf-8")) > MAX_NAME_BYTES:
        raise UsageError(
            f"{flag} {value[:70]!r} is not a plain name (letters, digits, _ and $, starting "
            f"with a letter or _, at most {MAX_NAME_BYTES} bytes)",
            "objects whose names need quoting cannot be restored partially: restore the "
            "whole database into a new one and copy them from there")
    return value


@dataclass(frozen=True)
class TableName:
    name: str
    schema: str | None = None  # None: in whichever schema the dump has it

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


@dataclass(frozen=True)
class PartialSelection:
    """The schemas and tables to restore; empty: the whole dump."""

    schemas: tuple[str, ...] = ()
    tables: tuple[TableName, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.schemas or self.tables)

    def describe(self) -> str:
        parts = [*(f"schema {s}" for s in self.schemas), *(f"table {t}" for t in self.tables)]
        return ", ".join(parts)

    @classmethod
    def of(cls, schemas: list[str] | tuple[str, ...] = (),
           tables: list[str] | tuple[str, ...] = ()) -> PartialSelection:
        """From --schema NAME and --table [SCHEMA.]NAME values. Raises UsageError."""
        checked_schemas = tuple(dict.fromkeys(check_name(s, "--schema") for s in schemas))
        checked_tables: list[TableName] = []
        for value in tables:
            schema, dot, name = value.rpartition(".")
            if dot and not schema:
                check_name(value, "--table")  # ".x": refused with the usual line
            checked_tables.append(TableName(check_name(name, "--table"),
                                            check_name(schema, "--table") if dot else None))
        return cls(checked_schemas, tuple(dict.fromkeys(checked_tables)))
