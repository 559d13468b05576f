"""#21 §1: systemd/drbackup.service under a real systemd (booted with systemd-nspawn).

drbackup is installed in the container as README tells ops (scripts/systemd-rootfs.sh: a venv
behind /usr/local/bin/drbackup, the unit, sysusers, tmpfiles and sysctl files; the test runs
README's systemd-sysusers / systemd-tmpfiles / sysctl --system / enable --now). Every job kind
runs inside the unit, from the daemon's own schedules: backups of a root-only directory, a
SQLite file, PostgreSQL and MariaDB databases; replication to a second store; forget and
prune; check; file and database drills (same-server and local-instance); metrics; evidence
reports written to the store. The tests run in file order and share one container and one
service: each step leaves the service as the next expects.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from tests.systemd.container import Container

pytestmark = [pytest.mark.slow, pytest.mark.systemd]

UNIT = "drbackup.service"
CONFIG = "/etc/drbackup/drbackup.toml"
STATE_DB = "/var/lib/drbackup/state.db"
REPO = "/var/lib/drbackup/repos/planning"
REPLICA = "/var/lib/drbackup/archive/planning"
PASSWORD = "/etc/drbackup/credentials/planning.password"
WATCHDOG_SEC = 120  # systemd/drbackup.service
TIMEOUT_STOP_SEC = 150
# What a seccomp or capability refusal looks like in any program's message.
DENIAL = re.compile(r"EPERM|Operation not permitted|seccomp|Bad system call|SIGSYS|"
                    r"audit.*type=1326|capset", re.IGNORECASE)
# CAP_DAC_READ_SEARCH is bit 2.
ONLY_DAC_READ_SEARCH = f"{1 << 2:016x}"

SOURCES = """
  [[agencies.sources]]
  id = "secret"
  kind = "directory"
  paths = ["/srv/secret"]
  debounce = "1s"

  [[agencies.sources]]
  id = "bulk"
  kind = "directory"
  paths = ["/srv/bulk"]
  debounce = "1s"

  [[agencies.sources]]
  id = "registry"
  kind = "sqlite"
  path = "/srv/registry/registry.sqlite"
  min_size = 1
  assert = ["SELECT count(*) = 3 FROM permits"]

  [[agencies.sources]]
  id = "permits-db"
  kind = "postgres"
  dsn = "dbname=permits host=/run/postgresql"
  min_size = 1
  assert = ["SELECT count(*) = 3 FROM permits"]
  drill_target = "same-server"

  [[agencies.sources]]
  id = "permits-local"
  kind = "postgres"
  dsn = "dbname=permits host=/run/postgresql"
  min_size = 1
  assert = ["SELECT count(*) = 3 FROM permits"]
  drill_target = "local-instance"

  [[agencies.sources]]
  id = "licences-db"
  kind = "mysql"
  database = "licences"
  socket = "/run/mysqld/mysqld.sock"
  user = "drbackup"
  min_size = 1
  assert = ["SELECT count(*) = 2 FROM licences"]
  drill_target = "same-server"

  [[agencies.sources]]
  id = "licences-local"
  kind = "mysql"
  database = "licences"
  socket = "/run/mysqld/mysqld.sock"
  user = "drbackup"
  min_size = 1
  assert = ["SELECT count(*) = 2 FROM licences"]
  drill_target = "local-instance"
"""

CONFIG_TEXT = """
[daemon]
metrics_listen = "127.0.0.1:9917"
schedule_jitter = "0s"
stop_grace = "5s"

[stores.archive]
path = "/var/lib/drbackup/archive"

[[agencies]]
id = "planning"
password_file = "${CREDENTIALS_DIRECTORY}/planning.password"
replicas = ["archive"]

  [agencies.verify]
  check_schedule = "every 1m"
  drill_schedule = "every 1m"

  [agencies.retention]
  keep_within = "1h"
  schedule = "every 1m"
  prune_schedule = "every 2m"
""" + SOURCES

ADDED_SOURCE = """
  [[agencies.sources]]
  id = "added"
  kind = "directory"
  paths = ["/srv/added"]
"""

PG_SETUP = """
CREATE ROLE drbackup LOGIN SUPERUSER;
CREATE DATABASE permits OWNER drbackup;
\\c permits
CREATE TABLE permits (id int PRIMARY KEY, holder text);
INSERT INTO permits VALUES (1, 'a'), (2, 'b'), (3, 'c');
ALTER TABLE permits OWNER TO drbackup;
"""

MARIADB_SETUP = """
CREATE DATABASE licences;
CREATE TABLE licences.licences (id int PRIMARY KEY, holder text);
INSERT INTO licences.licences VALUES (1, 'a'), (2, 'b');
CREATE USER drbackup@localhost IDENTIFIED VIA unix_socket;
GRANT ALL PRIVILEGES ON *.* TO drbackup@localhost WITH GRANT OPTION;
"""


# -- helpers ---------------------------------------------------------------------------------
def runs(box: Container, where: str = "1") -> list[dict[str, Any]]:
    out = box.run("sqlite3", "-readonly", "-json", STATE_DB,
                  "SELECT id, job, source, store, trigger, result, error FROM runs "  # noqa: S608
                  f"WHERE {where} ORDER BY id").stdout  # where: the test's own literals
    return json.loads(out) if out.strip() else []


def snapshots(box: Container, repo: str = REPO) -> list[dict[str, Any]]:
    done = box.run("restic", "-r", repo, "--password-file", PASSWORD, "--no-cache", "--json",
                   "snapshots", check=False)
    if done.returncode == 10:  # not created yet (the service creates it on first use)
        return []
    assert done.returncode == 0, done.stderr
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


def tagged(snaps: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
    return [s for s in snaps if f"source={source}" in s.get("tags", [])]


def main_pid(box: Container) -> int:
    return int(box.show(UNIT, "MainPID")["MainPID"])


def wait_for(what: str, check: Any, timeout: float, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def grow_bulk(box: Container, name: str, mib: int = 400) -> None:
    """New incompressible data for the 'bulk' source, so its next backup takes seconds."""
    box.sh(f"head -c {mib}M /dev/urandom > /srv/bulk/{name}.tmp && "
           f"mv /srv/bulk/{name}.tmp /srv/bulk/{name} && chmod 0600 /srv/bulk/{name}")


def wait_running_bulk(box: Container) -> dict[str, Any]:
    found: dict[str, Any] = wait_for(
        "a running backup of 'bulk'",
        lambda: next(iter(runs(box, "job = 'backup' AND source = 'bulk' "
                                    "AND result = 'running'")), None),
        timeout=120, interval=0.2)
    return found


def no_restic(box: Container) -> bool:
    return box.run("pgrep", "-x", "restic", check=False).returncode == 1


# -- the steps, in order ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def service(box: Container) -> Container:
    """Data, databases, secrets and the config in place; drbackup installed as README says."""
    # README "Install as a systemd service": the files are in place (systemd-rootfs.sh); now
    # the commands.
    box.sh("systemd-sysusers && systemd-tmpfiles --create && sysctl --system >/dev/null")
    box.sh("mkdir -p /srv/secret/inner /srv/bulk /srv/registry /srv/added && "
           "echo 'only root may read this' > /srv/secret/inner/plan.txt && "
           "echo added > /srv/added/a.txt && "
           "chown -R root:root /srv && chmod 0700 /srv/secret /srv/secret/inner /srv/bulk && "
           "chmod 0600 /srv/secret/inner/plan.txt")
    box.sh("sqlite3 /srv/registry/registry.sqlite \"CREATE TABLE permits (id INTEGER PRIMARY "
           "KEY, holder TEXT); INSERT INTO permits VALUES (1,'a'),(2,'b'),(3,'c');\" && "
           "chmod 0600 /srv/registry/registry.sqlite && chmod 0700 /srv/registry")
    grow_bulk(box, "seed", 8)
    box.run("systemctl", "start", "postgresql.service", "mariadb.service")
    box.run("runuser", "-u", "postgres", "--", "psql", "-q", "-v", "ON_ERROR_STOP=1",
            input_text=PG_SETUP)
    box.run("mariadb", "-u", "root", input_text=MARIADB_SETUP)
    box.write(PASSWORD, "correct horse battery staple\n", mode=0o600)
    box.write("/etc/drbackup/credentials/offsite.credentials",
              "[default]\naws_access_key_id = unused\naws_secret_access_key = unused\n",
              mode=0o600)
    box.write(CONFIG, CONFIG_TEXT, mode=0o644)
    box.run("systemctl", "daemon-reload")
    return box


def test_sysusers_tmpfiles_sysctl_applied(service: Container) -> None:
    box = service
    passwd = box.run("getent", "passwd", "drbackup").stdout.strip().split(":")
    assert passwd[5:] == ["/var/lib/drbackup", "/usr/sbin/nologin"], passwd
    assert int(passwd[2]) < 1000, "a system user"
    modes = box.run("stat", "-c", "%n %a %U %G", "/etc/drbackup", "/etc/drbackup/credentials",
                    "/var/lib/drbackup", "/var/cache/drbackup").stdout.split("\n")
    assert modes[:4] == ["/etc/drbackup 755 root root", "/etc/drbackup/credentials 700 root root",
                         "/var/lib/drbackup 700 drbackup drbackup",
                         "/var/cache/drbackup 700 drbackup drbackup"], modes
    # Applied at boot by systemd-sysctl.service, and again by README's sysctl --system.
    sysctl = box.show("systemd-sysctl.service", "ActiveState", "Result", "ConditionResult")
    assert sysctl == {"ActiveState": "active", "Result": "success", "ConditionResult": "yes"}
    values = box.run("sysctl", "-n", "fs.inotify.max_user_watches", "fs.inotify.max_queued_events",
                     "fs.inotify.max_user_instances").stdout.split()
    assert values == ["1048576", "262144", "512"]


def test_start_reaches_active_after_ready(service: Container) -> None:
    box = service
    box.run("systemctl", "enable", "--now", UNIT, timeout=TIMEOUT_STOP_SEC)
    shown = box.show(UNIT, "Type", "ActiveState", "SubState", "NRestarts", "StatusText",
                     "WatchdogUSec", "User", "MainPID", "UnitFileState")
    assert shown["Type"] == "notify"
    assert (shown["ActiveState"], shown["SubState"]) == ("active", "running"), shown
    assert shown["NRestarts"] == "0" and shown["UnitFileState"] == "enabled"
    assert shown["WatchdogUSec"] == "2min"
    # STATUS= is sent by drbackup after READY=1; systemctl start returned only after READY=1.
    assert "agenc" in shown["StatusText"], shown
    proc = box.run("grep", "-E", "^(Uid|Cap(Inh|Prm|Eff|Bnd|Amb)):",
                   f"/proc/{shown['MainPID']}/status").stdout
    fields = dict(line.split(":", 1) for line in proc.splitlines())
    uid = box.run("id", "-u", "drbackup").stdout.strip()
    assert fields["Uid"].split() == [uid] * 4
    # CAP_DAC_READ_SEARCH and nothing else, in every set restic inherits from.
    for cap in ("CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert fields[cap].strip() == ONLY_DAC_READ_SEARCH, (cap, fields)


def test_root_only_directory_backed_up_through_capability(service: Container) -> None:
    box = service
    # The service user itself cannot read it: only the capability can.
    denied = box.run("setpriv", "--reuid=drbackup", "--regid=drbackup", "--clear-groups",
                     "ls", "/srv/secret", check=False)
    assert denied.returncode != 0 and "Permission denied" in denied.stderr
    snaps = wait_for("a snapshot of 'secret'", lambda: tagged(snapshots(box), "secret"), 120)
    listed = box.run("restic", "-r", REPO, "--password-file", PASSWORD, "--no-cache", "ls",
                     snaps[-1]["short_id"]).stdout
    assert "/srv/secret/inner/plan.txt" in listed
    dumped = box.run("restic", "-r", REPO, "--password-file", PASSWORD, "--no-cache", "dump",
                     snaps[-1]["short_id"], "/srv/secret/inner/plan.txt").stdout
    assert dumped == "only root may read this\n"
    good = runs(box, "job = 'backup' AND source = 'secret'")
    assert good and good[0]["result"] == "success", good


def test_credentials_reach_the_service_through_credentials_directory(service: Container
                                                                     ) -> None:
    box = service
    pid = main_pid(box)
    env = box.run("cat", f"/proc/{pid}/environ").stdout.split("\0")
    assert "CREDENTIALS_DIRECTORY=/run/credentials/drbackup.service" in env
    creds = "/run/credentials/drbackup.service"
    listing = box.run("stat", "-c", "%n %a %U", f"{creds}/planning.password",
                      f"{creds}/offsite.credentials").stdout.split("\n")
    assert listing[0] == "/run/credentials/drbackup.service/planning.password 400 drbackup"
    # The config says password_file = "${CREDENTIALS_DIRECTORY}/planning.password": the
    # repository the service made opens with the secret's content (the backup above succeeded
    # with it), and the secret's source file is unreadable to the service user.
    assert snapshots(box)
    denied = box.run("setpriv", "--reuid=drbackup", "--regid=drbackup", "--clear-groups",
                     "--bounding-set=-all", "cat", PASSWORD, check=False)
    assert denied.returncode != 0


def test_every_job_kind_runs_and_stays_up_past_twice_watchdog(service: Container) -> None:
    box = service
    start = box.show(UNIT, "ActiveEnterTimestampMonotonic", "MainPID")
    every = ("secret", "bulk", "registry", "permits-db", "permits-local", "licences-db",
             "licences-local")
    kinds: set[tuple[str, str | None]] = {("backup", s) for s in every}
    kinds |= {("drill", s) for s in every}
    kinds |= {("replicate", None), ("check", None), ("forget", None), ("prune", None)}

    def done() -> bool:
        # A forget of the replica scheduled before the first replication created it fails
        # ("does not exist"): the daemon's behaviour, not the unit's; anything else fails.
        failed = runs(box, "result = 'failed' AND NOT (job IN ('forget', 'prune') AND "
                           "store = 'archive' AND error LIKE '%does not exist%')")
        assert not failed, "failed runs under the unit:\n" + "\n".join(map(str, failed))
        good = {(r["job"], r["source"]) for r in runs(box, "result IN ('success', 'warning')")}
        return kinds <= good
    wait_for("every job kind to succeed once", done, timeout=420, interval=5)
    # 2 x WatchdogSec (plus a margin) after READY=1, without a restart or a new main process.
    now = int(box.run("cat", "/proc/uptime").stdout.split()[0].split(".")[0])
    up = now - int(start["ActiveEnterTimestampMonotonic"]) // 1_000_000
    if up < 2 * WATCHDOG_SEC + 10:
        time.sleep(2 * WATCHDOG_SEC + 10 - up)
    after = box.show(UNIT, "ActiveState", "SubState", "NRestarts", "MainPID", "Result")
    assert after == {"ActiveState": "active", "SubState": "running", "NRestarts": "0",
                     "MainPID": start["MainPID"], "Result": "success"}, after
    # The replica holds copies; the store holds signed evidence of the checks and drills.
    assert tagged(snapshots(box, REPLICA), "secret")
    reports = box.run("ls", f"{REPO}/reports").stdout.split()
    assert any("-check-" in r for r in reports) and any("-drill-" in r for r in reports), reports
    # Metrics, served by the service on its loopback.
    metrics = box.run("curl", "-sf", "http://127.0.0.1:9917/metrics").stdout
    assert "drbackup_" in metrics and 'source="secret"' in metrics


def test_reload_rereads_the_config(service: Container) -> None:
    box = service
    pid = main_pid(box)
    box.write(CONFIG, CONFIG_TEXT + ADDED_SOURCE, mode=0o644)
    box.run("systemctl", "reload", UNIT)
    wait_for("a snapshot of the source added by reload",
             lambda: tagged(snapshots(box), "added"), 120)
    assert main_pid(box) == pid
    added = runs(box, "job = 'backup' AND source = 'added'")
    assert added[0]["trigger"] == "reload" and added[0]["result"] == "success", added


def test_kill_9_restarts_and_closes_the_interrupted_run(service: Container) -> None:
    box = service
    before = box.show(UNIT, "MainPID", "NRestarts")
    grow_bulk(box, "crash")
    running = wait_running_bulk(box)
    box.run("kill", "-9", before["MainPID"])
    # RestartSec=10s; the old cgroup (restic included) is stopped first (KillMode=mixed).
    wait_for("a restart", lambda: box.show(UNIT, "NRestarts")["NRestarts"] == "1", 60)
    wait_for("active again", lambda: box.show(UNIT, "ActiveState")["ActiveState"] == "active", 120)
    after = box.show(UNIT, "MainPID", "NRestarts", "Result")
    assert after["MainPID"] != before["MainPID"]
    closed = wait_for("the interrupted run closed",
                      lambda: runs(box, f"id = {running['id']} AND result = 'interrupted'"), 60)
    assert closed
    # and the restarted daemon backs the source up by itself (startup trigger).
    wait_for("a good backup of 'bulk' after the restart",
             lambda: runs(box, f"job = 'backup' AND source = 'bulk' AND id > {running['id']} "
                               "AND result = 'success'"), 240, interval=2)


def test_stop_ends_within_timeout_with_no_restic_left(service: Container) -> None:
    box = service
    grow_bulk(box, "stop")
    running = wait_running_bulk(box)
    started = time.monotonic()
    box.run("systemctl", "stop", UNIT, timeout=TIMEOUT_STOP_SEC + 30)
    took = time.monotonic() - started
    assert took < TIMEOUT_STOP_SEC, took
    shown = box.show(UNIT, "ActiveState", "Result", "ExecMainStatus", "ExecMainCode")
    # Result=success: exited 0 by itself, not killed at TimeoutStopSec.
    assert shown == {"ActiveState": "inactive", "Result": "success", "ExecMainStatus": "0",
                     "ExecMainCode": "1"}, shown
    assert no_restic(box)
    ended = runs(box, f"id = {running['id']}")
    assert ended[0]["result"] in ("interrupted", "success"), ended
    assert not runs(box, "result = 'running'")


def test_journal_holds_no_permission_or_seccomp_denial(service: Container) -> None:
    box = service
    journal = box.journal(UNIT)
    assert "event" in journal  # drbackup's JSON lines are there
    denials = [line for line in journal.splitlines() if DENIAL.search(line)]
    assert not denials, "\n".join(denials[:20])
    # the kernel's side: no seccomp/audit records (SystemCallErrorNumber=EPERM logs none, so
    # the per-program messages above are the evidence; this catches a SIGSYS kill).
    kernel = box.run("journalctl", "-k", "--no-pager", "-o", "cat", check=False).stdout
    assert not [line for line in kernel.splitlines() if "seccomp" in line.lower()]
