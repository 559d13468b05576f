"""What an opened recovery kit becomes on the fresh host: a minimal drbackup.toml and, for the
day drbackup cannot run there, plain restic's settings per agency and store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from drbackup.engine.environment import restic_env_file
from drbackup.recovery import kit_databases, offline
from drbackup.store import S3Location


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(type(value))


def render_config(payload: dict[str, Any], out_dir: Path) -> tuple[str, list[str]]:
    """A minimal drbackup.toml for restores from the kit; also the credentials files it names
    that the kit did not carry."""
    lines = ["# Written by 'drbackup recovery-kit open' for an emergency restore.",
             f"# Kit created {payload.get('created')} on host {payload.get('host')}.",
             "[daemon]",
             f"state_dir = {_toml(str(out_dir / 'state'))}",
             f"cache_dir = {_toml(str(out_dir / 'cache'))}", ""]
    missing: list[str] = []
    for name, store in sorted(payload["stores"].items()):
        lines.append(f"[stores.{name}]")
        if "url" in store:
            credentials = out_dir / "credentials" / f"{name}.credentials"
            lines += [f"url = {_toml(store['url'])}",
                      f"region = {_toml(store.get('region', 'us-east-1'))}",
                      f"credentials_file = {_toml(str(credentials))}",
                      "create_bucket = false"]
            if "credentials" not in store:
                missing.append(str(credentials))
        else:
            lines.append(f"path = {_toml(store['path'])}")
        lines.append("")
    for agency in payload["agencies"]:
        password_file = out_dir / "passwords" / f"{agency['id']}.password"
        lines += ["[[agencies]]",
                  f"id = {_toml(agency['id'])}",
                  f"password_file = {_toml(str(password_file))}",
                  f"store = {_toml(agency['store'])}",
                  f"replicas = {_toml(list(agency['replicas']))}"]
        if agency.get("maintenance_host"):
            # The restore host never becomes the maintenance host by opening a kit.
            lines.append(f"maintenance_host = {_toml(agency['maintenance_host'])}")
        lines.append("")
        lines += offline.config_lines(agency, out_dir)
        for source in agency["sources"]:
            if source.get("kind") in kit_databases.DATABASE_KINDS:  # restore-db on a new host
                lines += kit_databases.database_source_lines(source)
                continue
            if source.get("kind") != "directory" or not source.get("paths"):
                continue  # dumpdir: `drbackup restore` finds them by their tags
            lines += ["[[agencies.sources]]",
                      f"id = {_toml(source['id'])}",
                      'kind = "directory"',
                      f"paths = {_toml(list(source['paths']))}",
                      "watch = false", ""]
    targets, missing_targets = kit_databases.restore_target_lines(payload, out_dir)
    return "\n".join(lines + targets), missing + missing_targets


def render_restic_env(payload: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """For the day drbackup cannot run on the restore host: per agency and store (primary and
    replicas) a file `restic/<agency>@<store>.env` with what plain restic needs (engine's
    `restic_env_file`: repository, password file, credentials file, region; no secret)."""
    files: dict[str, str] = {}
    for agency in payload["agencies"]:
        password_file = out_dir / "passwords" / f"{agency['id']}.password"
        for store_name in [agency["store"], *agency["replicas"]]:
            store = payload["stores"][store_name]
            title = (f"plain restic for agency {agency['id']} in store {store_name} "
                     "(written by 'drbackup recovery-kit open')")
            if "url" in store:
                body = restic_env_file(
                    title, S3Location.parse(store["url"]).child(agency["id"]).restic_url,
                    password_file, out_dir / "cache",
                    credentials_file=out_dir / "credentials" / f"{store_name}.credentials",
                    region=store.get("region", "us-east-1"))
            else:
                body = restic_env_file(title, str(Path(store["path"]) / agency["id"]),
                                       password_file, out_dir / "cache")
            files[f"{agency['id']}@{store_name}.env"] = body
    return files


