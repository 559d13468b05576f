"""Partial PostgreSQL restores: which entries of a dump's table of contents make up the named
schemas and tables, written as a pg_restore list file (`--use-list`).

pg_restore's own -n / -t fall short of what a DBA gets back from `pg_dump -n` / `-t`: `-t`
leaves out a table's indexes, constraints, triggers, defaults and owned sequences (pg_restore's
manual says so), `-n` leaves out the CREATE SCHEMA and the schema's own comment and grants. So
the selection is made here from `pg_restore --list --verbose` (every entry, with the ids it
depends on), and it mirrors pg_dump's: a table with its data, comments, grants, indexes,
constraints (a foreign key too: the tables it references must be on the target), triggers,
defaults, rules, policies and owned sequences; a schema with everything in it.

The listing is the dump's (the agency's) text. Its lines are `ID; CATALOG OID DESC NAMESPACE TAG
OWNER` with spaces inside DESC and TAG, so only names without spaces are asked for
(drbackup/sources/dbselect.py) and compared whole; a dump where a name could be read two ways
is refused rather than guessed."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from drbackup.errors import NotFoundError, UsageError
from drbackup.sources.dbselect import PartialSelection, TableName

_ENTRY = re.compile(r"(\d+); (\d+) (\d+) (.*)")
_DEPENDS = re.compile(r";\s+depends on:((?: \d+)*)\s*")
# pg_dump's entry kinds (PostgreSQL 12-17), longest first so "TABLE DATA" is not "TABLE".
_KINDS = sorted((
    "ACCESS METHOD", "ACL", "AGGREGATE", "BLOB", "BLOBS", "BLOB METADATA", "CAST",
    "CHECK CONSTRAINT", "COLLATION", "COMMENT", "CONSTRAINT", "CONVERSION", "DATABASE",
    "DATABASE PROPERTIES", "DEFAULT", "DEFAULT ACL", "DOMAIN", "ENCODING", "EVENT TRIGGER",
    "EXTENSION", "FK CONSTRAINT", "FOREIGN DATA WRAPPER", "FOREIGN SERVER", "FOREIGN TABLE",
    "FUNCTION", "INDEX", "INDEX ATTACH", "LARGE OBJECT", "LARGE OBJECTS", "MATERIALIZED VIEW",
    "MATERIALIZED VIEW DATA", "OPERATOR", "OPERATOR CLASS", "OPERATOR FAMILY", "POLICY",
    "PROCEDURE", "PROCEDURAL LANGUAGE", "PUBLICATION", "PUBLICATION TABLE",
    "PUBLICATION TABLES IN SCHEMA", "ROW SECURITY", "RULE", "SCHEMA", "SEARCHPATH",
    "SECURITY LABEL", "SEQUENCE", "SEQUENCE OWNED BY", "SEQUENCE SET", "SERVER", "SHELL TYPE",
    "STATISTICS", "STATISTICS DATA", "STDSTRINGS", "SUBSCRIPTION", "SUBSCRIPTION TABLE",
    "TABLE", "TABLE ATTACH", "TABLE DATA", "TEXT SEARCH CONFIGURATION",
    "TEXT SEARCH DICTIONARY", "TEXT SEARCH PARSER", "TEXT SEARCH TEMPLATE", "TRANSFORM",
    "TRIGGER", "TYPE", "USER MAPPING", "VIEW"), key=len, reverse=True)
# What --table names (pg_restore -t matches the same kinds).
RELATIONS = frozenset({"TABLE", "VIEW", "MATERIALIZED VIEW", "FOREIGN TABLE", "SEQUENCE"})
# Entries of a table whose tag starts with the table's name ("orders orders_pkey").
_TAGGED = frozenset({"CONSTRAINT", "CHECK CONSTRAINT", "FK CONSTRAINT", "TRIGGER", "DEFAULT",
                     "POLICY", "RULE", "ROW SECURITY"})
# Entries that belong to what they depend on (data, comments, grants, indexes, owned sequences).
_ATTACHED = frozenset({"TABLE DATA", "MATERIALIZED VIEW DATA", "INDEX", "INDEX ATTACH",
                       "STATISTICS", "STATISTICS DATA", "COMMENT", "ACL", "SECURITY LABEL",
                       "SEQUENCE", "SEQUENCE OWNED BY", "SEQUENCE SET", "TABLE ATTACH"})
# Kinds an attached entry may depend on only when they are restored too.
_CONTENT = RELATIONS | {"TABLE DATA", "INDEX", "CONSTRAINT", "FK CONSTRAINT"}
MAX_ENTRIES = 2_000_000


@dataclass(frozen=True)
class TocEntry:
    dump_id: int
    kind: str  # "" when pg_dump's kind is not one drbackup knows
    namespace: str | None  # None: "-"
    tag: str
    line: str
    depends: tuple[int, ...] = ()


def _entry(match: re.Match[str]) -> TocEntry:
    dump_id, text = int(match.group(1)), match.group(4)
    kind = next((k for k in _KINDS if text.startswith(k + " ")), "")
    rest = text[len(kind) + 1:] if kind else text
    namespace, _, rest = rest.partition(" ")
    tag = rest.rpartition(" ")[0] if " " in rest else rest  # the owner is the last word
    return TocEntry(dump_id, kind, None if namespace == "-" else namespace, tag,
                    match.group(0))


def parse_listing(text: str) -> list[TocEntry]:
    """The entries of `pg_restore --list --verbose` output, with their dependencies.

    Raises UsageError when the listing is implausibly long."""
    entries: list[TocEntry] = []
    for raw in text.splitlines():
        match = _ENTRY.fullmatch(raw.rstrip("\n"))
        if match:
            if len(entries) >= MAX_ENTRIES:
                raise UsageError("the dump's table of contents has over "
                                 f"{MAX_ENTRIES} entries", "restore the whole database")
            entries.append(_entry(match))
            continue
        depends = _DEPENDS.fullmatch(raw)
        if depends and entries:
            last = entries[-1]
            ids = tuple(int(x) for x in depends.group(1).split())
            entries[-1] = TocEntry(last.dump_id, last.kind, last.namespace, last.tag,
                                   last.line, last.depends + ids)
    return entries


def _shown(names: Iterable[str], limit: int = 8) -> str:
    listed = sorted(set(names))
    more = f" and {len(listed) - limit} more" if len(listed) > limit else ""
    return (", ".join(listed[:limit]) + more) or "none"


def _tables(entries: list[TocEntry], table: TableName) -> list[TocEntry]:
    found = [e for e in entries if e.kind in RELATIONS and e.tag == table.name
             and (table.schema is None or e.namespace == table.schema)]
    if not found:
        known = (f"{e.namespace}.{e.tag}" for e in entries if e.kind == "TABLE")
        raise NotFoundError(f"the dump has no table {str(table)!r} (its tables: "
                            f"{_shown(known)})", "name one of its tables as SCHEMA.TABLE")
    schemas = {e.namespace or "" for e in found}
    if len(schemas) > 1:
        raise UsageError(f"table {table.name!r} is in several schemas of the dump "
                         f"({_shown(schemas)})", "name it as SCHEMA.TABLE")
    return found


def _schema(entries: list[TocEntry], schema: str) -> list[TocEntry]:
    clash = [e.tag for e in entries if e.kind == "SCHEMA" and e.tag.startswith(schema + " ")]
    if clash:
        raise UsageError(f"the dump also has a schema named {clash[0][:70]!r}: its listing "
                         f"cannot tell it from {schema!r}", "restore the whole database")
    found = [e for e in entries if (e.kind == "SCHEMA" and e.tag == schema)
             or (e.namespace == schema and e.kind not in {"", "SCHEMA"})]
    if not found:
        known = (e.tag for e in entries if e.kind == "SCHEMA")
        raise NotFoundError(f"the dump has no schema {schema!r} (its schemas: "
                            f"{_shown(known)})", "name one of its schemas")
    return found


def select_entries(entries: list[TocEntry], selection: PartialSelection) -> list[TocEntry]:
    """The entries that restore `selection`, in the dump's order.

    Raises NotFoundError (a name the dump does not have), UsageError (an ambiguous name)."""
    chosen: dict[int, TocEntry] = {}
    for schema in selection.schemas:
        chosen.update((e.dump_id, e) for e in _schema(entries, schema))
    for table in selection.tables:
        chosen.update((e.dump_id, e) for e in _tables(entries, table))
    by_id = {e.dump_id: e for e in entries}
    changed = True
    while changed:  # add what belongs to what is chosen, until nothing more does
        changed = False
        for entry in entries:
            if entry.dump_id in chosen or not any(d in chosen for d in entry.depends):
                continue
            if _belongs(entry, chosen, by_id):
                chosen[entry.dump_id] = entry
                changed = True
    return [e for e in entries if e.dump_id in chosen]


def _belongs(entry: TocEntry, chosen: dict[int, TocEntry], by_id: dict[int, TocEntry]
             ) -> bool:
    if entry.kind in _TAGGED:  # its own table is chosen (a foreign key of another is not)
        return any(d in chosen and by_id[d].kind in RELATIONS
                   and by_id[d].namespace == entry.namespace
                   and (entry.tag == by_id[d].tag or entry.tag.startswith(by_id[d].tag + " "))
                   for d in entry.depends)
    if entry.kind in _ATTACHED:  # e.g. an index on a chosen table, not one across two
        return all(d in chosen for d in entry.depends
                   if d in by_id and by_id[d].kind in _CONTENT)
    return False


def list_file(entries: list[TocEntry]) -> str:
    """A pg_restore --use-list file restoring exactly `entries`."""
    return "".join(e.line + "\n" for e in entries)
