"""What the installed systemd unit lets the service do, against what the config asks of it.

Two mistakes only show once the unit runs: a local store outside the directories the unit
makes writable (`ProtectSystem=strict` leaves the rest of the file system read-only, so every
backup fails), and a secret referenced as `${CREDENTIALS_DIRECTORY}/NAME` that no
`LoadCredential=` line loads (or a `LoadCredential=` line whose file does not exist: systemd
then refuses to start the unit with "Protocol error"). `config check` reads the unit and its
drop-ins (as systemd does: later files win, an empty assignment resets a list) and names the
line to add; the daemon says the same at start when a store is on a read-only file system."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

UNIT_NAME = "drbackup.service"
# Where systemd looks for units, highest priority first.
UNIT_DIRS = (Path("/etc/systemd/system"), Path("/run/systemd/system"),
             Path("/usr/local/lib/systemd/system"), Path("/usr/lib/systemd/system"),
             Path("/lib/systemd/system"))
DROP_IN = f"/etc/systemd/system/{UNIT_NAME}.d/writable-paths.conf"
_CREDENTIAL_REF = re.compile(r"\$\{?CREDENTIALS_DIRECTORY\}?/([^/\s]+)$")
_LIST_KEYS = ("ReadWritePaths", "StateDirectory", "CacheDirectory", "RuntimeDirectory",
              "LogsDirectory", "LoadCredential", "LoadCredentialEncrypted", "SetCredential",
              "SetCredentialEncrypted")
# StateDirectory=drbackup means /var/lib/drbackup, and so on.
_DIRECTORY_ROOTS = {"StateDirectory": Path("/var/lib"), "CacheDirectory": Path("/var/cache"),
                    "RuntimeDirectory": Path("/run"), "LogsDirectory": Path("/var/log")}


@dataclass(frozen=True)
class UnitSettings:
    """The settings of drbackup.service that decide what the service may write and read."""

    path: Path
    protect_system: str = "no"
    writable: tuple[Path, ...] = ()
    credentials: dict[str, Path | None] = field(default_factory=dict)  # name -> source file

    def is_writable(self, path: Path) -> bool:
        if self.protect_system != "strict":
            return True  # only "strict" makes the whole tree (beyond /dev, /proc, /sys) read-only
        return any(path == base or path.is_relative_to(base) for base in self.writable)


def find_unit() -> Path | None:
    """The installed drbackup.service, where systemd would take it from; None when not
    installed (not a systemd host, or not installed as a service)."""
    for directory in UNIT_DIRS:
        if (directory / UNIT_NAME).is_file():
            return directory / UNIT_NAME
    return None


def _drop_ins(unit: Path) -> list[Path]:
    """Drop-ins of the unit, in the order systemd applies them (by file name; a name in a
    higher-priority directory hides the same name in a lower one)."""
    found: dict[str, Path] = {}
    for directory in (*UNIT_DIRS, unit.parent):
        folder = directory / f"{UNIT_NAME}.d"
        if folder.is_dir():
            for conf in folder.glob("*.conf"):
                found.setdefault(conf.name, conf)
    return [found[name] for name in sorted(found)]


def _service_lines(path: Path) -> Iterator[tuple[str, str]]:
    section = ""
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "Service" and "=" in line:
            key, _, value = line.partition("=")
            yield key.strip(), value.strip()


def read_unit(unit: Path) -> UnitSettings:
    """Parse the unit and its drop-ins. Raises OSError when the unit cannot be read."""
    values: dict[str, Any] = {key: [] for key in _LIST_KEYS}
    scalars: dict[str, str] = {}
    for path in (unit, *_drop_ins(unit)):
        for key, value in _service_lines(path):
            if key in _LIST_KEYS:
                if value:
                    values[key].extend(value.split() if key.endswith(("Paths", "Directory"))
                                       else [value])
                else:
                    values[key] = []  # an empty assignment resets the list
            else:
                scalars[key] = value
    writable = [Path(p.lstrip("-+")) for p in values["ReadWritePaths"]]
    for key, root in _DIRECTORY_ROOTS.items():
        writable += [root / name.partition(":")[0] for name in values[key]]
    if scalars.get("PrivateTmp", "no").lower() in ("yes", "true", "1", "on", "disconnected"):
        writable += [Path("/tmp"), Path("/var/tmp")]
    credentials: dict[str, Path | None] = {}
    for key in ("LoadCredential", "LoadCredentialEncrypted"):
        for entry in values[key]:
            name, _, source = entry.partition(":")
            credentials[name] = Path(source) if source.startswith("/") else None
    for key in ("SetCredential", "SetCredentialEncrypted"):
        for entry in values[key]:
            credentials[entry.partition(":")[0]] = None
    return UnitSettings(unit, scalars.get("ProtectSystem", "no").lower(), tuple(writable),
                        credentials)


def credential_references(raw: object, where: str = "") -> Iterator[tuple[str, str]]:
    """(key path, credential name) of every `${CREDENTIALS_DIRECTORY}/NAME` in the raw config."""
    if isinstance(raw, dict):
        for key, value in raw.items():
            yield from credential_references(value, f"{where}.{key}" if where else str(key))
    elif isinstance(raw, list):
        for index, item in enumerate(raw):
            yield from credential_references(item, f"{where}[{index}]")
    elif isinstance(raw, str) and (found := _CREDENTIAL_REF.search(raw)):
        yield where, found.group(1)


def unit_problems(unit: UnitSettings, raw: object, written: dict[str, Path]
                  ) -> list[tuple[str, str]]:
    """(key path, message) for each thing the unit would refuse the config; `written` maps
    the key paths of directories the service writes (local stores, state, cache) to them."""
    problems: list[tuple[str, str]] = []
    for where, path in written.items():
        if not unit.is_writable(path):
            problems.append((where, (
                f"{path} is read-only for the service ({unit.path} has ProtectSystem=strict): "
                f"add a drop-in {DROP_IN} with the lines '[Service]' and "
                f"'ReadWritePaths={path}', then run 'systemctl daemon-reload'")))
    for where, name in credential_references(raw):
        if name not in unit.credentials:
            problems.append((where, (
                f"${{CREDENTIALS_DIRECTORY}}/{name} is not loaded by {unit.path}: add the line "
                f"'LoadCredential={name}:/etc/drbackup/credentials/{name}' to its [Service]")))
    for name, source in sorted(unit.credentials.items()):
        if source is not None and not source.exists():
            problems.append(("", (
                f"{unit.path}: LoadCredential={name}:{source} names a file that does not "
                "exist: systemd refuses to start the unit ('Protocol error'); create the file "
                "or remove the line")))
    return problems


def read_only_problem(path: Path) -> str | None:
    """Why `path` (a local store) cannot be written by this process, or None. Looks at the
    nearest existing ancestor's mount: a read-only mount under the unit means a missing
    ReadWritePaths= line."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        read_only = bool(os.statvfs(probe).f_flag & os.ST_RDONLY)
    except OSError:
        return None
    if not read_only:
        return None
    if "INVOCATION_ID" not in os.environ:  # set by systemd for a service's processes
        return (f"{path} is on a read-only file system: remount it read-write or choose "
                "another path")
    return (f"{path} is read-only for the service (the unit's ProtectSystem=strict): add a "
            f"drop-in {DROP_IN} with the lines '[Service]' and 'ReadWritePaths={path}', then "
            "'systemctl daemon-reload' and restart drbackup")
