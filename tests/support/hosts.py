"""Several drbackup hosts of one agency on this machine: each its own workspace (config, state
dir, cache, host name), all writing into one local repository, each running restic through a
shim that logs every restic command line (argv holds no secret), so a test can prove which
restic verbs a host ever started."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.support.workspace import Workspace

AGENCY = "planning"
STORE = "shared"
# restic's global options that take a value: the word after them is not the verb.
_VALUED = {"--retry-lock", "--limit-upload", "--limit-download", "-o", "--option"}


def restic_shim(path: Path, restic: str, log: Path) -> Path:
    """An executable that appends its argv to `log`, then becomes the real restic (exec: the
    same process, so signals, exit codes and restic's own lock checks are restic's)."""
    path.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{restic}" "$@"\n')
    path.chmod(0o755)
    return path


def lock_retries(log: Path) -> dict[str, int]:
    """Per restic verb, how many of its runs were retries after a lock conflict (drbackup adds
    --retry-lock only to a run that follows an exit 11: engine/invoke.py)."""
    counts: dict[str, int] = {}
    if log.exists():
        for line in log.read_text().splitlines():
            if "--retry-lock" in line.split():
                verbs = restic_verbs_of([line])
                if verbs:
                    counts[verbs[0]] = counts.get(verbs[0], 0) + 1
    return counts


def restic_verbs(log: Path) -> list[str]:
    """The verb of every restic command logged by a shim, in order."""
    if not log.exists():
        return []
    return restic_verbs_of(log.read_text().splitlines())


def restic_verbs_of(lines: list[str]) -> list[str]:
    verbs = []
    for line in lines:
        words = iter(line.split())
        for word in words:
            if word in _VALUED:
                next(words, None)
            elif not word.startswith("-"):
                verbs.append(word)
                break
    return verbs


def host(root: Path, name: str, *, restic: str, repos: Path, password: str,
         maintenance_host: str | None, source: str | None = None, data: Path | None = None,
         backup_every: str = "every 2s", maintenance: dict[str, str] | None = None,
         drill_schedule: str | None = None) -> Workspace:
    """One host's workspace: its restic shim logs to <root>/<name>/restic.log; the agency has
    the same password, store and maintenance_host on every host, and its own source (if any)."""
    ws = Workspace(root / name)
    ws.config["daemon"].update({
        "hostname": name, "restic": str(restic_shim(ws.root / "restic", restic,
                                                    ws.root / "restic.log")),
        "lock_wait": "2m", "schedule_jitter": "0s"})
    ws.config["stores"][STORE] = {"path": str(repos)}
    schedules = maintenance or {}
    extra: dict[str, Any] = {
        "retention": {"keep_within": "1h", "keep_daily": 1,
                      "schedule": schedules.get("forget", "daily 05:30"),
                      "prune_schedule": schedules.get("prune", "30 6 * * 0")},
        "verify": {"check_schedule": schedules.get("check", "daily 03:30"),
                   "drill_schedule": drill_schedule or "daily 04:30", "check_subsets": 4,
                   "data_check_interval": "0s"},
        "guard": {"enabled": False},
    }
    if maintenance_host is not None:
        extra["maintenance_host"] = maintenance_host
    ws.add_agency(AGENCY, store=STORE, password=password, **extra)
    if source is not None:
        assert data is not None
        ws.add_directory_source(AGENCY, source, [data], watch=False, schedule=backup_every)
    ws.write()
    return ws


def restic_log(ws: Workspace) -> Path:
    return ws.root / "restic.log"


def restic_env(ws: Workspace, repos: Path) -> dict[str, str]:
    return {**os.environ, "RESTIC_REPOSITORY": str(repos / AGENCY),
            "RESTIC_PASSWORD_FILE": str(ws.root / "secrets" / f"{AGENCY}.password"),
            "RESTIC_CACHE_DIR": str(ws.root / "plain-restic-cache")}


def plain_restic(ws: Workspace, repos: Path, restic: str, *args: str, check: bool = True
                 ) -> subprocess.CompletedProcess[str]:
    """restic itself on the shared repository (not through drbackup, not logged by a shim)."""
    result = subprocess.run([restic, *args], env=restic_env(ws, repos), capture_output=True,
                            text=True, timeout=600, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"restic {' '.join(args)} exited {result.returncode}: "
                             f"{result.stderr}")
    return result


def snapshots(ws: Workspace, repos: Path, restic: str) -> list[dict[str, Any]]:
    """Every snapshot in the shared repository, as restic lists it."""
    found = json.loads(plain_restic(ws, repos, restic, "--no-lock", "snapshots",
                                    "--json").stdout)
    assert isinstance(found, list)
    return found
