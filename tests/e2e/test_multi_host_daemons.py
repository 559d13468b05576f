"""Issue 18 acceptance, several hosts and one agency: three daemons (three state directories,
three host names) back up different sources of one agency into one repository at once, every
2 s, while their data keeps changing and the maintenance host (host-a) runs forget, prune and
the rotating data check on tight schedules. Then:

- no backup failed (none on a lock: restic's locks and drbackup's lock wait settle every
  meeting of a backup with forget, prune or check);
- every snapshot a backup recorded as good is in the repository, and `restic check
  --read-data` passes: a prune that ran while another host's backup was in flight would have
  deleted data that backup's snapshot needs;
- the forget on host-a removed the old snapshots of the other hosts' sources too (planted before
  the trial) and never the maintenance claim;
- host-b and host-c never started restic's forget, prune or check (each runs restic through a
  shim that logs every restic command line);
- `restore --all-sources` on host-c (whose config knows its own source only) brings back every
  source's newest snapshot, whichever host made it, byte-identical;
- a second host configured as maintenance host is refused in one line.

Both trials run drills on host-b and a second owner's daemon (host-d) beside them, refused at
every turn: `make test` for 2.5 minutes (the acceptance's "several minutes", in CI),
`make test-long` for 5. Timeouts are polling limits, never asserted durations."""

from __future__ import annotations

import functools
import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import pytest

from drbackup.errors import ExitCode
from tests.support.daemon import DaemonProcess, runs, wait_for
from tests.support.hosts import (
    AGENCY,
    host,
    lock_retries,
    plain_restic,
    restic_log,
    restic_verbs,
    snapshots,
)
from tests.support.trees import manifest
from tests.support.workspace import Workspace

SOURCES = {"host-a": "documents", "host-b": "scans", "host-c": "permits"}
OWNER = "host-a"
PASSWORD = "one-password-for-the-agency"
EXCLUSIVE = {"forget", "prune", "check", "tag"}
MAINTENANCE = {"forget": "every 5s", "prune": "every 7s", "check": "every 9s"}
SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "report.schema.json"
SHORT_TRIAL = 150.0
LONG_TRIAL = 300.0


@dataclass
class Fleet:
    root: Path
    repos: Path
    restic: str
    hosts: dict[str, Workspace] = field(default_factory=dict)
    data: dict[str, Path] = field(default_factory=dict)
    planted: dict[str, list[str]] = field(default_factory=dict)  # source -> old snapshot ids

    def add(self, name: str, maintenance_host: str | None, *, drills: bool = False
            ) -> Workspace:
        source = SOURCES.get(name)
        data = None
        if source is not None:
            data = self.data[source] = self.root / "data" / name
            for index in range(4):
                _write(data / f"file-{index}.txt", f"{name} {index} first\n")
        ws = host(self.root, name, restic=self.restic, repos=self.repos, password=PASSWORD,
                  maintenance_host=maintenance_host, source=source, data=data,
                  maintenance=MAINTENANCE, drill_schedule="every 15s" if drills else None)
        self.hosts[name] = ws
        return ws


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text)
    temp.replace(path)  # whole files only: a backup never reads half of one


def _plant_old_snapshots(fleet: Fleet) -> None:
    """Two snapshots per source dated weeks back, made as their hosts' (same host and tags as
    the daemons' own): host-a's forget must remove the older one of each, whoever made it."""
    owner = fleet.hosts[OWNER]
    for name, source in SOURCES.items():
        for days in (40, 20):
            old = fleet.root / "old" / source / str(days)
            _write(old / "old.txt", f"{source} {days} days ago\n" * 2000)
            made = plain_restic(owner, fleet.repos, fleet.restic, "--json", "backup",
                                "--host", name, "--tag", f"agency={AGENCY}", "--tag",
                                f"source={source}", "--tag", "kind=directory", "--time",
                                time.strftime("%Y-%m-%d %H:%M:%S",
                                              time.localtime(time.time() - days * 86400)),
                                str(old))
            summary = json.loads(made.stdout.splitlines()[-1])
            fleet.planted.setdefault(source, []).append(summary["snapshot_id"])


class Writers:
    """Each host's data changes all the time (a file rewritten every ~0.3 s)."""

    def __init__(self, fleet: Fleet):
        self.fleet = fleet
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for turn in itertools.count():
            if self.stop.wait(0.3):
                return
            for source, data in self.fleet.data.items():
                _write(data / f"file-{turn % 4}.txt", f"{source} turn {turn}\n" * 500)

    def __enter__(self) -> Writers:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


@pytest.fixture
def fleet(tmp_path: Path, restic_binary: str) -> Iterator[Fleet]:
    fleet = Fleet(tmp_path, tmp_path / "repos", restic_binary)
    yield fleet


def _results(ws: Workspace, job: str) -> list[str]:
    return [str(r["result"]) for r in runs(ws, job=job)]


def _succeeded(ws: Workspace, job: str, count: int) -> bool:
    return _results(ws, job).count("success") >= count


def _tally(name: str, ws: Workspace, retries: dict[str, int]) -> str:
    """One host's runs (successful / all) and lock retries, for the log of a trial."""
    jobs = ", ".join(f"{job} {_results(ws, job).count('success')}/{len(_results(ws, job))}"
                     for job in ("backup", "forget", "prune", "check"))
    return f"{name}: {jobs}, lock retries {retries or 'none'}"


def _trial(fleet: Fleet, seconds: float, *, second_owner: bool = False) -> None:
    for name in SOURCES:
        fleet.add(name, OWNER, drills=second_owner and name == "host-b")
    fleet.hosts[OWNER].cli("repo", "init", check=True)
    _plant_old_snapshots(fleet)
    daemons = {name: DaemonProcess(ws) for name, ws in fleet.hosts.items()}
    owner = fleet.hosts[OWNER]
    try:
        with Writers(fleet):
            for daemon in daemons.values():
                daemon.wait_ready()
            if second_owner:
                # A second host configured as owner comes up once host-a maintains (two that
                # claim at the very same moment: tests/integration/test_maintenance_owner.py).
                wait_for(functools.partial(_succeeded, owner, "forget", 1), 120,
                         "host-a's first forget")
                daemons["host-d"] = DaemonProcess(fleet.add("host-d", "host-d"))
                daemons["host-d"].wait_ready()
            ends = time.monotonic() + seconds
            while time.monotonic() < ends:
                time.sleep(1)
                for name, daemon in daemons.items():
                    assert daemon.process.poll() is None, f"{name}: {daemon.log_text()}"
            # Enough happened: each host backed up twice, the owner forgot, pruned and checked.
            for name in SOURCES:
                wait_for(functools.partial(_succeeded, fleet.hosts[name], "backup", 2), 120,
                         f"two backups on {name}")
            for job in ("forget", "prune", "check"):
                wait_for(functools.partial(_succeeded, owner, job, 1), 180,
                         f"a {job} on {OWNER}")
    finally:
        for daemon in daemons.values():
            daemon.stop()

    retries = {name: lock_retries(restic_log(ws)) for name, ws in fleet.hosts.items()}
    print(f"multi-host trial {seconds:.0f}s: " + "; ".join(
        _tally(name, ws, retries[name]) for name, ws in fleet.hosts.items()))
    # No backup failed, on any host (lock meetings were waited out).
    for name in SOURCES:
        backups = runs(fleet.hosts[name])
        bad = [(r["result"], r["error"]) for r in backups
               if r["result"] not in ("success", "warning", "interrupted")]
        assert not bad, f"{name}: {bad}"
        assert not [r for r in backups if "lock" in str(r["error"] or "").lower()]
    # The owner maintained; nobody else started a verb that takes the exclusive lock.
    for job in ("forget", "prune", "check"):
        failed = [r["error"] for r in runs(owner, job=job) if r["result"] == "failed"]
        assert not failed, f"{job} on {OWNER}: {failed}"
    assert {"forget", "prune", "check"} <= set(restic_verbs(restic_log(owner)))
    for name in ("host-b", "host-c"):
        assert not EXCLUSIVE & set(restic_verbs(restic_log(fleet.hosts[name]))), name
        for job in ("forget", "prune", "check"):
            assert runs(fleet.hosts[name], job=job) == [], f"{job} ran on {name}"

    listed = snapshots(owner, fleet.repos, fleet.restic)
    present = {s["id"] for s in listed}
    for name in SOURCES:
        recorded = {r["snapshot_id"] for r in runs(fleet.hosts[name])
                    if r["result"] in ("success", "warning") and r["snapshot_id"]}
        assert recorded and recorded <= present, f"{name}: {recorded - present} missing"
    removed = {i for r in runs(owner, job="forget")
               for i in json.loads(r["details"] or "{}").get("planned_remove", [])}
    for source, (older, _newer) in fleet.planted.items():
        assert older not in present and older in removed, f"{source}: old snapshot stayed"
    claims = [s for s in listed if "claim=maintenance" in (s.get("tags") or [])]
    assert [c["hostname"] for c in claims] == [OWNER]
    hosts_seen = {s["hostname"] for s in listed if f"agency={AGENCY}" in (s.get("tags") or [])}
    assert hosts_seen == set(SOURCES)
    check = plain_restic(owner, fleet.repos, fleet.restic, "check", "--read-data")
    assert "no errors were found" in check.stdout

    if second_owner:
        # Minutes of it: the owner's exclusive lock did meet the other hosts' backups.
        assert any(retries[name].get("backup") for name in ("host-b", "host-c")), retries
        rival = fleet.hosts["host-d"]
        refused = runs(rival, job="forget") + runs(rival, job="prune") + runs(rival, job="check")
        assert refused and all(r["result"] == "failed" and "names host 'host-a' its "
                               "maintenance host" in str(r["error"]) for r in refused)
        assert not EXCLUSIVE & set(restic_verbs(restic_log(rival)))
    _reports(fleet)
    _restore_everything(fleet)
    _second_owner_refused(fleet)


def _reports(fleet: Fleet) -> None:
    """status and report say which host maintains; only the owner reports on checks."""
    schema = json.loads(SCHEMA.read_text())
    for name in SOURCES:
        ws = fleet.hosts[name]
        report = json.loads(ws.cli("--json", "report", "--agency", AGENCY,
                                   check=True).stdout)
        jsonschema.validate(report, schema)
        (agency,) = report["agencies"]
        assert (agency["host"], agency["maintenance_host"]) == (name, OWNER)
        assert agency["maintains_here"] is (name == OWNER)
        assert [s["source"] for s in agency["sources"]] == [SOURCES[name]]
        checked = not any("check" in finding for finding in agency["findings"])
        assert checked and (agency["last_check"] is not None) is (name == OWNER), agency
        status = json.loads(ws.cli("--json", "status", check=True).stdout)
        (role,) = status["agencies"]
        assert role["maintenance_host"] == OWNER and role["maintains_here"] is (name == OWNER)
        human = ws.cli("status", check=True).stdout
        assert (f"on this host ({OWNER})" if name == OWNER
                else f"maintenance on {OWNER}; this host ({name}) backs up only") in human


def _restore_everything(fleet: Fleet) -> None:
    """After a last backup on each host: host-c restores all three sources, each from its newest
    snapshot whatever host made it."""
    for name in SOURCES:
        fleet.hosts[name].cli("backup", "--agency", AGENCY, "--no-progress", check=True)
    restorer = fleet.hosts["host-c"]
    target = fleet.root / "restored"
    result = restorer.cli("--json", "restore", "--agency", AGENCY, "--all-sources",
                          "--target", str(target), "--no-progress", check=True)
    total = json.loads(result.stdout.splitlines()[-1])
    assert total["restored"] == 3 and total["failed"] == [] and total["missing"] == []
    for source, data in fleet.data.items():
        assert manifest(target / source / data.relative_to("/")) == manifest(data), source
    shown = restorer.cli("snapshots", "--agency", AGENCY, check=True).stdout
    assert all(name in shown for name in SOURCES) and "from 3 hosts" in shown


def _second_owner_refused(fleet: Fleet) -> None:
    rival = fleet.add("host-z", "host-z")
    result = rival.cli("prune", "--agency", AGENCY)
    assert result.returncode == ExitCode.MAINTENANCE_REFUSED, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("drbackup:")]
    assert len(errors) == 1 and "names host 'host-a' its maintenance host" in errors[0]
    assert not EXCLUSIVE & set(restic_verbs(restic_log(rival)))


def test_three_hosts_back_up_one_agency_while_the_owner_maintains(fleet: Fleet) -> None:
    _trial(fleet, SHORT_TRIAL, second_owner=True)


@pytest.mark.slow
def test_three_hosts_for_minutes_with_drills_and_a_second_owner_daemon(fleet: Fleet) -> None:
    _trial(fleet, LONG_TRIAL, second_owner=True)
