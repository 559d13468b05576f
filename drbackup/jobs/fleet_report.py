"""The city report (`drbackup fleet report`, #20 item 2): read every host's published summary
out of the named stores and judge them (drbackup/fleet/city.py).

What it reads is bounded by agencies x hosts, not by history: one listing of the agencies under
the store's prefix (a delimiter listing: no repository object is listed), one listing of each
agency's fleet/ directory, one small GET per summary. It needs only list + get on */fleet/*
(config/policies/fleet-read.json) and no repository password: the config may hold the stores
alone, with read-only credentials.

Everything read is hostile: agency ids and host names from keys are checked before use, files
are read with a size bound, local files without following links."""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from drbackup.config.models import is_identifier
from drbackup.errors import DrBackupError, NotFoundError
from drbackup.fleet.city import FleetReport, SummaryFile, city_report
from drbackup.fleet.inventory import ExpectedAgency
from drbackup.fleet.summary import FLEET_DIR, is_host_name
from drbackup.fleet.trust import MAX_SUMMARY_BYTES, Keyring
from drbackup.jobs.runtime import Runtime
from drbackup.store import S3Location


@dataclass
class ReadResult:
    files: list[SummaryFile]
    unreadable: list[dict[str, object]]
    requests: int  # S3 requests (or directory reads) made: the bound the bench measures
    bytes_read: int


def _host_of(name: str) -> str | None:
    if not name.endswith(".json"):
        return None
    host = name[: -len(".json")]
    return host if is_host_name(host) else None


def _read_s3(rt: Runtime, name: str, url: str, out: ReadResult) -> None:
    s3 = rt.s3_store(name)
    assert s3 is not None
    base = S3Location.parse(url).prefix
    root = f"{base}/" if base else ""
    agencies = s3.list_prefixes(root)
    out.requests += 1
    for prefix in agencies:
        agency = prefix[len(root):].rstrip("/")
        if not is_identifier(agency):
            continue  # not an agency's repository (hostile or foreign): never read
        fleet = f"{root}{agency}/{FLEET_DIR}/"
        keys = s3.list_keys(fleet)
        out.requests += 1
        for key in keys:
            host = _host_of(key[len(fleet):])
            if host is None:
                continue
            try:
                body = s3.get_bytes(key, max_bytes=MAX_SUMMARY_BYTES)
            except DrBackupError as exc:
                out.unreadable.append({"store": name, "key": key, "error": exc.one_line(),
                                       "exit_code": int(exc.exit_code)})
                continue
            finally:
                out.requests += 1
            out.bytes_read += len(body)
            out.files.append(SummaryFile(name, key, agency, host, body))


def _read_file(path: Path) -> bytes:
    """At most MAX_SUMMARY_BYTES + 1 bytes of a regular file, opened without following links."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        return os.read(fd, MAX_SUMMARY_BYTES + 1)
    finally:
        os.close(fd)


def _read_local(name: str, root: Path, out: ReadResult) -> None:
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        out.unreadable.append({"store": name, "key": None,
                               "error": f"cannot list {root}: {exc.strerror}", "exit_code": 9})
        return
    out.requests += 1
    for entry in entries:
        if not is_identifier(entry.name) or not entry.is_dir(follow_symlinks=False):
            continue
        fleet = root / entry.name / FLEET_DIR
        try:
            names = sorted(os.listdir(fleet)) if not fleet.is_symlink() else []
        except OSError:
            continue  # no summaries for this agency
        out.requests += 1
        for file in names:
            host = _host_of(file)
            if host is None:
                continue
            try:
                body = _read_file(fleet / file)
            except OSError as exc:
                out.unreadable.append({"store": name, "key": str(fleet / file),
                                       "error": f"cannot read: {exc.strerror}", "exit_code": 9})
                continue
            out.bytes_read += len(body)
            out.files.append(SummaryFile(name, str(fleet / file), entry.name, host, body))


def read_summaries(rt: Runtime, stores: list[str]) -> ReadResult:
    """Every summary file in the named stores; a store that cannot be listed is recorded as
    unreadable (its exit code kept), not raised, so the others are still shown."""
    out = ReadResult([], [], 0, 0)
    for name in stores:
        store = rt.store_config(name)
        try:
            if store.url is not None:
                _read_s3(rt, name, store.url, out)
            else:
                assert store.path is not None
                _read_local(name, store.path, out)
        except DrBackupError as exc:
            out.unreadable.append({"store": name, "key": None, "error": exc.one_line(),
                                   "exit_code": int(exc.exit_code)})
    return out


def report_stores(rt: Runtime, named: list[str] | None) -> list[str]:
    """The stores to read: those named (each must be in the config), else every configured
    store. Raises NotFoundError."""
    if named:
        for name in named:
            rt.store_config(name)
        return list(dict.fromkeys(named))
    config = rt.config
    names = set(config.stores) | {a.store for a in config.agencies} | {
        r for a in config.agencies for r in a.replicas}
    if not names:
        raise NotFoundError("no store to read the fleet summaries from",
                            "configure [stores.<name>] with read-only credentials "
                            "(config/policies/fleet-read.json) or pass --store")
    return sorted(names)


def build_fleet_report(rt: Runtime, keyring: Keyring, *, stores: list[str] | None = None,
                       expected: list[ExpectedAgency] | None = None,
                       since: float | None = None, now: float | None = None
                       ) -> tuple[FleetReport, ReadResult]:
    """Read and judge. Raises NotFoundError for an unknown store; store failures are in the
    report's `unreadable`."""
    names = report_stores(rt, stores)
    read = read_summaries(rt, names)
    moment = time.time() if now is None else now
    report = city_report(read.files, keyring, now=moment, stores=names, expected=expected,
                         since=since, unreadable=read.unreadable)
    return report, read
