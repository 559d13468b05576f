"""The database part of the recovery kit (#17 items 7, 10): the agency's PostgreSQL and
MariaDB/MySQL sources (their connection settings, no password), its SQLite sources (their path)
and the `[[restore_targets]]` (with their passwords), so that a host opened from the kit can run
`drbackup restore-db --target NAME` (or `--all-databases --target NAME`) onto the standby server,
or `restore-db --into FILE` for SQLite, without anything else.

What comes out of a kit is checked like the rest of it: every entry must validate as the config
model it becomes, names must be ids (they name files under --out), and nothing is written into
the config but through TOML quoting."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from drbackup.config.models import (
    Config,
    MysqlSource,
    PostgresSource,
    RestoreTarget,
    Source,
    SqliteSource,
    is_identifier,
)
from drbackup.recovery.sealing import RecoveryKitError

log = logging.getLogger(__name__)

PASSWORDS_DIR = "db-passwords"
# What a database source's entry in the kit holds: where its server was and what it dumped;
# never a password file (that is this host's), bin_dir or socket (host-specific).
# A SQLite source's file path: restore-db on the fresh host needs the source, and writes a new
# file (--into), never this path.
# dump_args / restore_args are validated again (their allow-list) when the kit is opened.
_KEYS: dict[str, tuple[str, ...]] = {
    "postgres": ("dsn", "all", "exclude_databases", "globals", "dump_args", "restore_args"),
    "mysql": ("host", "port", "user", "database", "all", "exclude_databases", "globals",
              "dump_args", "restore_args"),
    "sqlite": ("path",),
}
_MODELS: dict[str, type[PostgresSource | MysqlSource | SqliteSource]] = {
    "postgres": PostgresSource, "mysql": MysqlSource, "sqlite": SqliteSource}
DATABASE_KINDS = tuple(_KEYS)


def source_entry(source: Source) -> dict[str, Any]:
    """A source as the kit's payload lists it."""
    entry: dict[str, Any] = {"id": source.id, "kind": source.kind,
                             "paths": [str(p) for p in getattr(source, "paths", [])]}
    for key in _KEYS.get(source.kind, ()):
        value = getattr(source, key)
        if value is not None:
            entry[key] = str(value) if key == "path" else value
    return entry


def targets_payload(config: Config) -> list[dict[str, Any]]:
    """The restore targets with their passwords (the kit is sealed: it carries secrets)."""
    entries = []
    for target in config.restore_targets:
        entry: dict[str, Any] = {"name": target.name, "kind": target.kind, "host": target.host,
                                 "port": target.server_port, "user": target.user}
        if target.password_file is not None:
            try:
                lines = target.password_file.read_text(encoding="utf-8").splitlines()
                entry["password"] = lines[0] if lines else ""
            except OSError as exc:
                log.warning("restore target %r: password file cannot be read (%s); the kit "
                            "will name it as missing", target.name, exc.__class__.__name__,
                            extra={"event": "kit_target_password_missing"})
                entry["password"] = None
        entries.append(entry)
    return entries


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(type(value))


def _kit_error(what: str) -> RecoveryKitError:
    return RecoveryKitError(f"the recovery kit's {what} is not valid",
                            "use another copy, or the kit of the drbackup release that made it")


def database_source_lines(entry: dict[str, Any]) -> list[str]:
    """The `[[agencies.sources]]` lines of a postgres/mysql/sqlite entry; [] for an entry of
    an older kit without connection settings. Raises RecoveryKitError for an entry that does
    not validate."""
    kind = str(entry.get("kind"))
    keys = _KEYS.get(kind)
    if keys is None:
        return []
    settings = {key: entry[key] for key in keys if key in entry}
    if keys[0] not in settings:
        return []
    model = _MODELS[kind]
    try:
        model.model_validate({"id": entry.get("id"), "kind": entry.get("kind"), **settings})
    except ValidationError:
        raise _kit_error(f"database source {str(entry.get('id'))[:64]!r}") from None
    lines = ["[[agencies.sources]]", f"id = {_toml(entry['id'])}",
             f"kind = {_toml(entry['kind'])}"]
    lines += [f"{key} = {_toml(value)}" for key, value in settings.items()]
    return [*lines, ""]


def _targets(payload: dict[str, Any]) -> list[dict[str, Any]]:
    targets = payload.get("restore_targets", [])
    if not isinstance(targets, list):
        raise _kit_error("restore_targets")
    for entry in targets:
        fields = {k: v for k, v in entry.items() if k != "password"} if isinstance(
            entry, dict) else None
        password = entry.get("password") if isinstance(entry, dict) else None
        try:
            RestoreTarget.model_validate(fields)
        except ValidationError:
            raise _kit_error("restore target") from None
        if password is not None and (not isinstance(password, str) or "\n" in password):
            raise _kit_error(f"password of restore target {entry['name']!r}")
    return targets


def restore_target_lines(payload: dict[str, Any], out_dir: Path
                         ) -> tuple[list[str], list[str]]:
    """The `[[restore_targets]]` lines of the kit's config, and the password files it names
    that the kit did not carry. Raises RecoveryKitError."""
    lines: list[str] = []
    missing: list[str] = []
    for entry in _targets(payload):
        lines += ["[[restore_targets]]"] + [
            f"{key} = {_toml(entry[key])}" for key in ("name", "kind", "host", "port", "user")]
        if "password" in entry:
            path = out_dir / PASSWORDS_DIR / f"{entry['name']}.password"
            lines.append(f"password_file = {_toml(str(path))}")
            if entry["password"] is None:
                missing.append(str(path))
        lines.append("")
    return lines, missing


def restore_target_secrets(payload: dict[str, Any]) -> dict[str, str]:
    """File name -> content of each restore target's password file the kit carries."""
    return {f"{entry['name']}.password": entry["password"] + "\n"
            for entry in _targets(payload)
            if isinstance(entry.get("password"), str) and is_identifier(entry["name"])}
