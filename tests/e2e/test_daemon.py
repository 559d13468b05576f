"""Issue 3 acceptance: the daemon as a real subprocess (`python -m drbackup --config X run`)
against the real moto S3 server (and the embedded local store where the line allows), with real
restic. Timeouts below are generous polling limits, never asserted durations."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from drbackup.config import load_config
from drbackup.jobs.runtime import Runtime
from tests.support.daemon import (
    DaemonProcess,
    cmdline,
    environ,
    kv,
    runs,
    successes,
    wait_for,
)
from tests.support.servers import TEST_SECRET_KEY, MotoServer
from tests.support.workspace import Workspace


def _runtime(ws: Workspace) -> Runtime:
    return Runtime.create(load_config(ws.write()))


def snapshot_files(ws: Workspace, agency: str, snapshot_id: str) -> set[str]:
    rt = _runtime(ws)
    target = rt.target(rt.config.agency(agency))
    return {Path(n.path).name for n in rt.restic.ls(target, snapshot_id) if n.type == "file"}


def restic_check(ws: Workspace, agency: str) -> None:
    rt = _runtime(ws)
    result = rt.restic.check(rt.target(rt.config.agency(agency)))
    assert result.ok, result


def _s3_workspace(ws: Workspace, server: MotoServer, bucket: str, agency: str = "planning",
                  **agency_extra: Any) -> None:
    ws.add_s3_store("offsite", server, bucket)
    ws.add_agency(agency, store="offsite", **agency_extra)


def _data(tmp_path: Path, name: str, files: int = 3) -> Path:
    root = tmp_path / name
    (root / "sub").mkdir(parents=True)
    for i in range(files):
        (root / "sub" / f"f{i}.txt").write_text(f"{name} {i}\n")
    return root


def test_change_then_burst_give_one_snapshot_each(workspace: Workspace, s3_server: MotoServer,
                                                  bucket: str, tmp_path: Path) -> None:
    data = _data(tmp_path, "documents")
    _s3_workspace(workspace, s3_server, bucket)
    workspace.add_directory_source("planning", "documents", [data], debounce="1s",
                                   max_delay="5m")
    daemon = DaemonProcess(workspace)
    try:
        daemon.wait_ready()
        first = wait_for(lambda: successes(workspace, "planning", "documents"), 60,
                         "the start-up backup")[0]
        # A new file (in a new subdirectory: new directories are watched too).
        (data / "new-dir").mkdir()
        time.sleep(0.5)
        (data / "new-dir" / "written.txt").write_text("written while watched\n")

        def with_written() -> dict[str, Any] | None:
            for run in successes(workspace, "planning", "documents")[1:]:
                if "written.txt" in snapshot_files(workspace, "planning", run["snapshot_id"]):
                    return run
            return None
        second = wait_for(with_written, 1 + 30, "a snapshot with the new file", interval=0.5)
        assert second["trigger"] == "watch"
        assert second["snapshot_id"] != first["snapshot_id"]

        # `status` while the daemon runs: last success and the next scheduled run.
        status = json.loads(workspace.cli("status", "--json", check=True).stdout)
        assert status["daemon"]["running"] is True
        (row,) = status["sources"]
        assert row["last_result"] == "success" and row["next_run"] is not None
        human = workspace.cli("status", check=True).stdout
        assert "daemon: running" in human and "planning/documents" in human

        # A burst of 200 files: one or two snapshots, not 200.
        before = len(successes(workspace, "planning", "documents"))
        burst = data / "burst"
        burst.mkdir()
        for i in range(200):
            (burst / f"b{i:03}.txt").write_text(f"burst {i}\n")

        def burst_captured() -> bool:
            done = successes(workspace, "planning", "documents")[before:]
            return bool(done) and "b199.txt" in snapshot_files(
                workspace, "planning", done[-1]["snapshot_id"])
        wait_for(burst_captured, 60, "the burst in a snapshot", interval=1.0)
        time.sleep(3)  # let any follow-up run land before counting
        wait_for(lambda: not [r for r in runs(workspace) if r["result"] == "running"], 60,
                 "no backup running")
        after = successes(workspace, "planning", "documents")[before:]
        assert 1 <= len(after) <= 2, after
    finally:
        assert daemon.stop() == 0
    status = json.loads(workspace.cli("status", "--json", check=True).stdout)
    assert status["daemon"]["running"] is False
    assert status["sources"][0]["last_result"] == "success"


def test_overflow_watch_limit_and_unwatched_sources_are_still_backed_up(
        workspace: Workspace, s3_server: MotoServer, bucket: str, tmp_path: Path) -> None:
    overflow, limited, unwatched, scanned = (
        _data(tmp_path, n) for n in ("ovf", "limit", "nowatch", "scanned"))
    # "records" reconciles every 4 s (rpo/2); "watched" never in this test, so the only run
    # that can capture a change there after start-up is one the overflow or a scan triggers.
    _s3_workspace(workspace, s3_server, bucket, agency="records", rpo="8s")
    workspace.config["daemon"]["poll_interval"] = "2s"
    workspace.add_agency("watched", store="offsite", rpo="24h")
    workspace.add_directory_source("watched", "ovf", [overflow], debounce="1s")
    workspace.add_directory_source("watched", "scanned", [scanned], debounce="1s")
    workspace.add_directory_source("records", "limit", [limited], debounce="1s",
                                   schedule="every 5s")
    workspace.add_directory_source("records", "nowatch", [unwatched], watch=False)
    sources = {"ovf": "watched", "limit": "records", "nowatch": "records",
               "scanned": "watched"}
    daemon = DaemonProcess(
        workspace, watch_faults="overflow:watched/ovf,enospc:records/limit,emfile:watched/scanned")
    try:
        daemon.wait_ready()
        for source, agency in sources.items():
            wait_for(lambda a=agency, s=source: successes(workspace, a, s),  # type: ignore[misc]
                     90, f"start-up backup of {source}")
        counts = {s: len(successes(workspace, a, s)) for s, a in sources.items()}
        for root in (overflow, limited, unwatched, scanned):
            (root / "changed.txt").write_text("must reach a snapshot\n")

        def captured(source: str) -> dict[str, Any] | None:
            agency = sources[source]
            for run in successes(workspace, agency, source)[counts[source]:]:
                if "changed.txt" in snapshot_files(workspace, agency, run["snapshot_id"]):
                    return run
            return None
        ovf_run = wait_for(lambda: captured("ovf"), 60, "overflow source captured", 1.0)
        limit_run = wait_for(lambda: captured("limit"), 60, "watch-limited source captured", 1.0)
        nowatch_run = wait_for(lambda: captured("nowatch"), 60, "unwatched source captured", 1.0)
        scanned_run = wait_for(lambda: captured("scanned"), 60, "scanned source captured", 1.0)
        assert ovf_run["trigger"] == "overflow"
        assert limit_run["trigger"] in ("schedule", "reconcile", "watch")
        assert nowatch_run["trigger"] == "reconcile"
        assert scanned_run["trigger"] == "watch"  # found by the scanning fallback

        # Counted (in state, so it survives a restart) and logged.
        overflows = json.loads(kv(workspace, "daemon.watch_overflows") or "{}")
        assert overflows.get("watched/ovf", 0) >= 1
        errors = json.loads(kv(workspace, "daemon.watch_errors") or "{}")
        assert errors["records/limit"] == 1 and errors["watched/scanned"] == 1
        logged = daemon.events("watch_overflow")
        assert logged and logged[0]["agency"] == "watched" and logged[0]["source"] == "ovf"
        limit_logs = {e["source"]: e["msg"] for e in daemon.events("watch_limit")}
        assert "No space left on device" in limit_logs["limit"]
        assert "Too many open files" in limit_logs["scanned"]
        assert {e["source"] for e in daemon.events("polling")} == {"limit", "scanned"}
        status = json.loads(workspace.cli("status", "--json", check=True).stdout)
        by_source = {s["source"]: s for s in status["sources"]}
        assert by_source["ovf"]["watch_overflows"] >= 1
        assert by_source["limit"]["watched"] is False and by_source["limit"]["polled"] is True
        assert by_source["nowatch"]["watched"] is False and by_source["nowatch"]["polled"] is False
    finally:
        assert daemon.stop() == 0


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    points = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals],
                    key=lambda p: (p[0], p[1]))
    current = peak = 0
    for _, delta in points:
        current += delta
        peak = max(peak, current)
    return peak


def test_sources_of_one_agency_never_overlap(workspace: Workspace, s3_server: MotoServer,
                                             bucket: str, tmp_path: Path) -> None:
    one, two = _data(tmp_path, "one"), _data(tmp_path, "two")
    _s3_workspace(workspace, s3_server, bucket)
    workspace.config["daemon"]["max_concurrent_jobs"] = 4
    workspace.add_directory_source("planning", "one", [one], debounce="1s")
    workspace.add_directory_source("planning", "two", [two], debounce="1s")
    daemon = DaemonProcess(workspace)
    try:
        daemon.wait_ready()
        wait_for(lambda: successes(workspace, "planning", "one")
                 and successes(workspace, "planning", "two"), 90, "start-up backups")
        for round_ in range(3):
            for root in (one, two):
                (root / f"round-{round_}.txt").write_text("both change at once\n")
            time.sleep(1.5)
        wait_for(lambda: len(runs(workspace)) >= 6
                 and not [r for r in runs(workspace) if r["result"] == "running"], 90,
                 "the change runs")
        time.sleep(2)
        wait_for(lambda: not [r for r in runs(workspace) if r["result"] == "running"], 60,
                 "idle")
    finally:
        assert daemon.stop() == 0
    done = runs(workspace)
    assert {r["source"] for r in done} == {"one", "two"}
    assert all(r["result"] == "success" for r in done), done
    intervals = sorted((r["started_at"], r["finished_at"]) for r in done)
    for (_, end), (start, _) in itertools.pairwise(intervals):
        assert start >= end, f"two restic jobs overlapped on one repository: {intervals}"


def test_fifty_agencies_complete_a_round_within_the_concurrency_limit(
        workspace: Workspace, tmp_path: Path, restic_binary: str) -> None:
    limit = 3
    workspace.config["daemon"]["max_concurrent_jobs"] = limit
    repos = workspace.state_dir / "repos"
    repos.mkdir(parents=True)
    password = "shared-test-password-50"
    # One real repository, initialised once and copied: 50 `restic init`s would cost a minute.
    template = tmp_path / "template-repo"
    pw_file = workspace.secret_file("template.password", password + "\n")
    env = {"RESTIC_PASSWORD_FILE": str(pw_file), "PATH": os.environ["PATH"]}
    subprocess.run([restic_binary, "init", "-q", "-r", str(template)], env=env, check=True,
                   capture_output=True)
    agencies = [f"agency-{i:02}" for i in range(50)]
    for agency in agencies:
        shutil.copytree(template, repos / agency)
        data = tmp_path / "data" / agency
        data.mkdir(parents=True)
        (data / "file.txt").write_text(f"{agency}\n")
        workspace.add_agency(agency, password=password)
        workspace.add_directory_source(agency, "files", [data], watch=False)
    daemon = DaemonProcess(workspace)
    peak = 0
    try:
        daemon.wait_ready()

        def round_done() -> bool:
            nonlocal peak
            for _ in range(5):  # sample the restic children often while waiting
                peak = max(peak, len(daemon.restic_children()))
                time.sleep(0.05)
            return len({r["agency"] for r in runs(workspace)
                        if r["result"] == "success"}) == len(agencies)
        wait_for(round_done, 240, "a backup of every agency", interval=0.0)
        status = json.loads(workspace.cli("status", "--json", check=True).stdout)
    finally:
        assert daemon.stop() == 0
    done = [r for r in runs(workspace) if r["result"] == "success"]
    assert 1 <= peak <= limit
    assert status["daemon"]["peak_running_jobs"] <= limit
    assert _max_overlap([(r["started_at"], r["finished_at"]) for r in done]) <= limit


def _slow_backup_workspace(ws: Workspace, server: MotoServer, bucket: str, tmp_path: Path
                           ) -> Path:
    data = tmp_path / "large"
    data.mkdir()
    (data / "big.bin").write_bytes(os.urandom(4 * 1024 * 1024))
    ws.add_s3_store("offsite", server, bucket, limit_upload="256KiB")
    ws.add_agency("planning", store="offsite")
    ws.add_directory_source("planning", "large", [data], watch=False)
    ws.config["daemon"]["stop_grace"] = "1s"
    return data


def _wait_backup_running(daemon: DaemonProcess) -> int:
    def restic_backup() -> int | None:
        for pid in daemon.restic_children():
            if "backup" in cmdline(pid):
                return pid
        return None
    pid = wait_for(restic_backup, 60, "restic backup running")
    time.sleep(2.0)  # well into the upload
    return pid


def _s3_locks(server: MotoServer, bucket: str) -> list[str]:
    listing = server.client().list_objects_v2(Bucket=bucket, Prefix="planning/locks/")
    return [item["Key"] for item in listing.get("Contents", [])]


def test_sigterm_during_a_large_backup(workspace: Workspace, s3_server: MotoServer, bucket: str,
                                       tmp_path: Path) -> None:
    _slow_backup_workspace(workspace, s3_server, bucket, tmp_path)
    notify = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    try:
        daemon = DaemonProcess(workspace, env={"NOTIFY_SOCKET": str(notify)})
        daemon.wait_ready()
        restic_pid = _wait_backup_running(daemon)
        assert "NOTIFY_SOCKET" not in environ(restic_pid)
        assert TEST_SECRET_KEY not in " ".join(cmdline(restic_pid))
        daemon.signal(signal.SIGTERM)
        assert daemon.process.wait(1 + 15 + 30) == 0
    finally:
        sock.close()
    (run,) = runs(workspace)
    assert run["result"] == "interrupted"
    assert daemon.events("terminate")
    assert _s3_locks(s3_server, bucket) == []  # restic removed its lock on SIGTERM
    del workspace.config["stores"]["offsite"]["limit_upload"]
    workspace.cli("backup", "--agency", "planning", check=True)
    restic_check(workspace, "planning")


def test_kill_9_during_backup_then_restart_recovers(workspace: Workspace, s3_server: MotoServer,
                                                   bucket: str, tmp_path: Path) -> None:
    _slow_backup_workspace(workspace, s3_server, bucket, tmp_path)
    daemon = DaemonProcess(workspace)
    daemon.wait_ready()
    _wait_backup_running(daemon)
    wait_for(lambda: _s3_locks(s3_server, bucket), 30, "restic's lock in the bucket")
    daemon.kill_hard()
    assert _s3_locks(s3_server, bucket), "the crash should leave a stale lock behind"
    (crashed,) = runs(workspace)
    assert crashed["result"] == "running"

    del workspace.config["stores"]["offsite"]["limit_upload"]
    restarted = DaemonProcess(workspace)
    try:
        restarted.wait_ready()
        after = wait_for(lambda: successes(workspace, "planning", "large"), 90,
                         "a backup after the restart")
    finally:
        assert restarted.stop() == 0
    first = runs(workspace)[0]
    assert first["id"] == crashed["id"] and first["result"] == "interrupted"
    assert restarted.events("run_interrupted") and restarted.events("unlock")
    assert after[0]["snapshot_id"]
    assert _s3_locks(s3_server, bucket) == []
    restic_check(workspace, "planning")


def test_sighup_keeps_old_config_when_broken_and_picks_up_new_sources(
        workspace: Workspace, s3_server: MotoServer, bucket: str, tmp_path: Path) -> None:
    first, second = _data(tmp_path, "first"), _data(tmp_path, "second")
    _s3_workspace(workspace, s3_server, bucket)
    workspace.add_directory_source("planning", "first", [first], debounce="1s")
    daemon = DaemonProcess(workspace)
    try:
        daemon.wait_ready()
        wait_for(lambda: successes(workspace, "planning", "first"), 60, "first backup")
        good_text = workspace.config_path.read_text()
        workspace.config_path.write_text(good_text + "\n[daemon.nonsense\n")
        daemon.signal(signal.SIGHUP)
        (failed,) = wait_for(lambda: daemon.events("reload_failed"), 30, "reload refused")
        assert "not valid TOML" in failed["msg"]
        assert daemon.process.poll() is None
        # Still working on the old config: a change is still backed up.
        count = len(successes(workspace, "planning", "first"))
        (first / "after-bad-reload.txt").write_text("x\n")
        wait_for(lambda: len(successes(workspace, "planning", "first")) > count, 40,
                 "backup on the old config")

        workspace.add_directory_source("planning", "second", [second], debounce="1s")
        workspace.write()
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: daemon.events("reloaded"), 30, "reload accepted")
        (run,) = wait_for(lambda: successes(workspace, "planning", "second"), 60,
                          "the new source's backup")[:1]
        assert run["trigger"] == "reload"
        (second / "watched-too.txt").write_text("y\n")
        wait_for(lambda: len(successes(workspace, "planning", "second")) > 1, 40,
                 "the new source is watched")
    finally:
        assert daemon.stop() == 0


def test_sd_notify_ready_status_watchdog_stopping_and_single_instance(
        workspace: Workspace, tmp_path: Path) -> None:
    data = _data(tmp_path, "docs")
    # A periodic task from drbackup/daemon/tasks.py (verification's repository check) runs
    # through the same queue on its schedule.
    workspace.add_agency("planning", verify={"check_schedule": "every 2s",
                                             "drill_schedule": "weekly"})
    workspace.config["daemon"]["schedule_jitter"] = "0s"
    workspace.add_directory_source("planning", "docs", [data])
    notify = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    sock.settimeout(0.5)
    messages: list[tuple[float, str]] = []

    def drain(until: float) -> None:
        while time.monotonic() < until:
            try:
                payload = sock.recv(4096).decode()
            except TimeoutError:
                continue
            messages.extend((time.monotonic(), line) for line in payload.splitlines())

    watchdog_usec = 2_000_000
    daemon = DaemonProcess(workspace, env={"NOTIFY_SOCKET": str(notify),
                                           "WATCHDOG_USEC": str(watchdog_usec)})
    try:
        daemon.wait_ready()
        # Only this window is read continuously; later datagrams queue in the socket and
        # their receive times say nothing about when they were sent.
        window_end = time.monotonic() + 5
        drain(window_end)
        check = wait_for(lambda: [r for r in runs(workspace, job="check")
                                  if r["result"] == "success"], 60, "a scheduled check")[0]
        assert check["trigger"] == "schedule" and check["agency"] == "planning"
        # A second daemon on the same state dir refuses to start.
        other = workspace.cli("run", timeout=60)
        assert other.returncode == 20, other.stderr
        assert "already uses state dir" in other.stderr
        daemon.signal(signal.SIGTERM)
        drain(time.monotonic() + 2)
        assert daemon.process.wait(60) == 0
    finally:
        daemon.stop()
        sock.close()
    lines = [line for _, line in messages]
    assert "READY=1" in lines
    assert any(line.startswith("STATUS=") and "sources" in line for line in lines)
    assert "STOPPING=1" in lines
    pings = [t for t, line in messages if line == "WATCHDOG=1" and t <= window_end]
    assert len(pings) >= 3
    # Every ping comes within the interval systemd enforces.
    assert all(b - a < watchdog_usec / 1e6 for a, b in itertools.pairwise(pings))
    assert lines.index("READY=1") < lines.index("STOPPING=1")
