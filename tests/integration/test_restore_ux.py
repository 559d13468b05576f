"""Restore UX on a real repository: --at picks by time, --dry-run writes nothing, non-empty and
in-place targets need explicit consent, ls/find locate files, progress lines and JSON lines."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drbackup.cli.main import main
from drbackup.config import load_config
from drbackup.errors import ExitCode
from drbackup.jobs.runtime import Runtime
from drbackup.jobs.tags import snapshot_tags
from tests.support.dbcheck import permits_rows, permits_sqlite, runs, wait_until
from tests.support.servers import MotoServer
from tests.support.tinyfs import tiny_tmpfs
from tests.support.trees import manifest
from tests.support.workspace import Workspace

INSTANTS = [datetime(2026, 11, 20, 10, 0, tzinfo=UTC), datetime(2026, 11, 20, 13, 0, tzinfo=UTC),
            datetime(2026, 11, 20, 16, 0, tzinfo=UTC)]


def _backup_at(ws: Workspace, data: Path, instant: datetime) -> str:
    """A snapshot made with restic's --time at a known instant (restic reads it as local time)."""
    rt = Runtime.create(load_config(ws.write()))
    try:
        agency = rt.config.agency("planning")
        result = rt.restic.backup(rt.target(agency), [str(data)],
                                  tags=snapshot_tags(agency, agency.source("docs")),
                                  host="test-host", time=instant.astimezone())
    finally:
        rt.close()
    assert result.summary.snapshot_id
    return result.summary.snapshot_id


@pytest.fixture(scope="module")
def timed(tmp_path_factory: pytest.TempPathFactory, restic_binary: str
          ) -> tuple[Workspace, Path, list[str]]:
    """One repository with three snapshots at known instants, shared by the tests below (the
    in-place test, which changes the data, runs last)."""
    tmp_path = tmp_path_factory.mktemp("timed")
    workspace = Workspace(tmp_path / "ws")
    workspace.config["daemon"]["restic"] = restic_binary
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "keep.log").write_text("log\n")
    workspace.add_agency("planning")
    workspace.add_directory_source("planning", "docs", [data])
    workspace.cli("repo", "init", check=True)
    ids = []
    for index, instant in enumerate(INSTANTS):
        (data / "state.txt").write_text(f"version {index}\n")
        ids.append(_backup_at(workspace, data, instant))
    return workspace, data, ids


def _restore(ws: Workspace, *args: str, env: dict[str, str] | None = None
             ) -> tuple[int, str, str]:
    result = ws.cli("restore", "--agency", "planning", "--source", "docs", "--no-progress", *args,
                    env=env)
    return result.returncode, result.stdout, result.stderr


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _state(target: Path, data: Path) -> str:
    return (target / data.relative_to("/") / "state.txt").read_text()


def test_at_picks_the_newest_snapshot_at_or_before(timed: tuple[Workspace, Path, list[str]],
                                                   tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    ws, data, ids = timed
    utc_env = {**ws.env(), "TZ": "UTC"}
    shanghai_env = {**ws.env(), "TZ": "Asia/Shanghai"}
    cases = [
        ("2026-11-20 14:00", utc_env, 1),             # local time (UTC here)
        ("2026-11-20 12:59:59", utc_env, 0),
        ("2026-11-20 21:00", shanghai_env, 1),        # Shanghai 21:00 = 13:00 UTC: "at" counts
        ("2026-11-20 22:30 Asia/Shanghai", utc_env, 1),
        ("2026-11-21 00:00 UTC", shanghai_env, 2),
    ]
    for index, (at, env, expected) in enumerate(cases):
        target = tmp_path / f"at-{index}"
        code, stdout, stderr = _restore(ws, "--at", at, "--target", str(target), env=env)
        assert code == 0, stderr
        assert ids[expected] in stdout, (at, stdout)
        assert _state(target, data) == f"version {expected}\n", at
    # Failures, in-process (no interpreter start per case).
    for at, code, text in [("2026-11-20 09:59 UTC", ExitCode.NOT_FOUND, "no snapshot at or before"),
                           ("yesterday-ish", ExitCode.USAGE, "is not a date and time")]:
        assert main(["--config", str(ws.config_path), "restore", "--agency", "planning",
                     "--source", "docs", "--at", at, "--target", str(tmp_path / "never")]) == code
        assert text in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_ls_and_find_locate_a_file_across_snapshots(
        timed: tuple[Workspace, Path, list[str]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    ws, data, ids = timed

    def run(*args: str) -> str:  # in-process: the CLI's output, real restic underneath
        capsys.readouterr()
        assert main(["--config", str(ws.config_path), *args]) == 0
        return capsys.readouterr().out

    hits = json.loads(run("--json", "find", "--agency", "planning", "state.txt"))
    assert sorted(h["snapshot_id"] for h in hits) == sorted(ids)
    assert {h["path"] for h in hits} == {str(data / "state.txt")}
    human = run("find", "--agency", "planning", "--source", "docs", "*.log")
    assert "3 match(es) in 3 snapshot(s)" in human
    entries = json.loads(run("--json", "ls", "--agency", "planning", "--source", "docs",
                             "--snapshot", ids[0][:8]))
    assert entries["snapshot_id"] == ids[0]
    paths = {e["path"]: e for e in entries["entries"]}
    assert paths[str(data / "state.txt")]["size"] == len("version 0\n")
    text = run("ls", "--agency", "planning", "--source", "docs")
    assert ids[-1] in text and str(data / "sub" / "keep.log") in text

    # What find located can be restored alone (--include), or everything but it (--exclude).
    only, without = tmp_path / "only-sub", tmp_path / "without-logs"
    run("restore", "--agency", "planning", "--source", "docs", "--no-progress",
        "--include", str(data / "sub"), "--target", str(only))
    run("restore", "--agency", "planning", "--source", "docs", "--no-progress",
        "--exclude", "*.log", "--target", str(without))
    inside = data.relative_to("/")
    assert (only / inside / "sub" / "keep.log").read_text() == "log\n"
    assert not (only / inside / "state.txt").exists()
    assert (without / inside / "state.txt").read_text() == "version 2\n"
    assert not (without / inside / "sub" / "keep.log").exists()


def test_dry_run_writes_nothing_and_targets_need_consent(
        timed: tuple[Workspace, Path, list[str]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    ws, data, ids = timed
    code, stdout, _ = _restore(ws, "--dry-run")  # default target: a new directory named after it
    default = Path.cwd() / f"drbackup-restore-planning-docs-{ids[-1][:8]}"
    assert code == 0 and f"snapshot {ids[-1]}" in stdout and f"into {default}" in stdout
    # The snapshot holds data's ancestors (their number depends on where pytest puts tmp_path)
    # plus state.txt, sub/ and sub/keep.log.
    entries = len(data.relative_to("/").parts) + 3
    assert f"would restore {entries} files/dirs, 14 B" in stdout
    assert not default.exists()
    target = tmp_path / "dry"
    result = ws.cli("--json", "restore", "--agency", "planning", "--source", "docs", "--dry-run",
                    "--target", str(target))
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["event"] == "summary" and summary["dry_run"] is True
    assert summary["files"] >= 2 and summary["bytes"] == len("version 2\n") + len("log\n")
    assert not target.exists()

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "precious.txt").write_text("do not touch\n")
    # Refusals, in-process (no interpreter start per case).
    for args, code, text in [
            (("--target", str(busy)), ExitCode.TARGET_REFUSED, "not empty (choose an empty "
             "directory, or pass --overwrite (or --in-place --yes"),
            (("--target", "/"), ExitCode.TARGET_REFUSED, "--in-place --yes"),
            (("--in-place",), ExitCode.TARGET_REFUSED, "add --yes"),
            (("--in-place", "--target", str(busy)), ExitCode.USAGE, "exclude"),
            (("--in-place", "--yes", "--include", "/etc/passwd"), ExitCode.TARGET_REFUSED,
             "outside the snapshot's paths"),
            (("--target", str(tmp_path / "x"), "--include", f"{data}/../../etc"),
             ExitCode.TARGET_REFUSED, "contains '..'")]:
        assert main(["--config", str(ws.config_path), "restore", "--agency", "planning",
                     "--source", "docs", "--no-progress", *args]) == code, args
        refused = capsys.readouterr()
        assert text in refused.err, args
        assert "restoring snapshot" not in refused.out, args  # refused before it starts
    assert sorted(p.name for p in busy.iterdir()) == ["precious.txt"]
    assert not (tmp_path / "x").exists()
    code, _, _ = _restore(ws, "--target", str(busy), "--overwrite")
    assert code == 0 and _state(busy, data) == "version 2\n"

    # In place, with consent: a deleted and a damaged file come back; nothing else is touched.
    (data / "state.txt").write_text("ransomware was here\n")
    (data / "sub" / "keep.log").unlink()
    (data / "new-since.txt").write_text("made after the snapshot\n")
    code, _, stderr = _restore(ws, "--in-place", "--yes", "--include", str(data))
    assert code == 0, stderr
    assert (data / "state.txt").read_text() == "version 2\n"
    assert (data / "sub" / "keep.log").read_text() == "log\n"
    assert (data / "new-since.txt").exists()


def _progress_workspace(ws: Workspace, tmp_path: Path, size: int, store: str = "local") -> Path:
    data = tmp_path / "big"
    data.mkdir()
    with (data / "big.bin").open("wb") as handle:
        for _ in range(size // (1 << 20)):
            handle.write(os.urandom(1 << 20))
    for index in range(20):
        (data / f"small-{index}.txt").write_text(f"{index}\n")
    ws.add_agency("planning", store=store)
    ws.add_directory_source("planning", "docs", [data])
    ws.cli("repo", "init", check=True)
    ws.cli("backup", "--agency", "planning", "--no-progress", check=True)
    return data


_ELAPSED = re.compile(r"^restore [0-9a-f]{8}: +[\d.]+% .* files, elapsed (\d+):(\d\d)")


def _check_plain_progress(stderr: str) -> int:
    """Progress lines on a non-TTY: plain lines, consecutive ones at most 5 s apart (by restic's
    own elapsed-seconds clock, so machine load cannot fake it)."""
    elapsed = [int(m.group(1)) * 60 + int(m.group(2))
               for line in stderr.splitlines() if (m := _ELAPSED.match(line))]
    assert "\r" not in stderr and "\x1b[" not in stderr
    assert elapsed, stderr
    assert elapsed[0] <= 5
    gaps = [b - a for a, b in itertools.pairwise(elapsed)]
    assert all(gap <= 5 for gap in gaps), elapsed
    return len(elapsed)


def _sigint_default() -> None:
    """A shell's background job (`make test &`) starts with SIGINT ignored, which Python keeps
    and its children inherit: the Ctrl-C below would never arrive. A terminal's Ctrl-C reaches
    drbackup with SIGINT at its default, as here."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_progress_lines_and_json_lines(workspace: Workspace, tmp_path: Path) -> None:
    """16 MiB read at 2 MiB/s (restic --limit-download) lasts ~8 s: long enough for several
    status messages (every 2 s) without a big data set, and to interrupt one; the 500 MB run
    is marked slow."""
    data = _progress_workspace(workspace, tmp_path, 16 << 20)
    plain = workspace.cli("restore", "--agency", "planning", "--source", "docs", "--target",
                          str(tmp_path / "plain"), "--limit-download", "2048", "--verify",
                          check=True)
    assert _check_plain_progress(plain.stderr) >= 2
    assert re.search(r"restored \d+ files/dirs, 16\.0 MiB from snapshot [0-9a-f]{8} .* in [\d.]+s, "
                     r"0 error\(s\); content verified", plain.stdout), plain.stdout

    machine = workspace.cli("--json", "restore", "--agency", "planning", "--source", "docs",
                            "--target", str(tmp_path / "json"), "--limit-download", "3072",
                            check=True)
    lines = [json.loads(line) for line in machine.stdout.splitlines()]
    progress = [line for line in lines if line["event"] == "progress"]
    summary = lines[-1]
    assert len(progress) >= 2 and lines[:-1] == progress
    assert all(0 <= p["percent_done"] <= 1 and p["total_bytes"] >= 16 << 20 for p in progress)
    assert all("eta_seconds" in p and "files_done" in p for p in progress)
    assert summary["event"] == "summary" and summary["errors"] == []
    assert summary["verified"] is False  # not asked for
    assert summary["bytes"] >= 16 << 20 and summary["seconds"] > 0
    assert len(summary["snapshot_id"]) == 64
    restored = tmp_path / "json" / data.relative_to("/") / "big.bin"
    assert restored.read_bytes() == (data / "big.bin").read_bytes()

    # Ctrl-C midway (SIGINT to the whole foreground group, restic included): the partial target
    # is named with the way to finish, and finishing it gives the same bytes.
    target = tmp_path / "interrupted"
    restore = [*workspace.cli_argv(), "restore", "--agency", "planning", "--source", "docs",
               "--target", str(target), "--no-progress"]
    running = subprocess.Popen([*restore, "--limit-download", "512"], env=workspace.env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, preexec_fn=_sigint_default)
    try:
        wait_until(lambda: (target / data.relative_to("/")).is_dir(), what="the restore to start")
        os.killpg(running.pid, signal.SIGINT)
        stdout, stderr = running.communicate(timeout=60)
    finally:
        running.kill()
    # (stdout too: a restore that finished before the signal says so there)
    assert running.returncode == ExitCode.INTERRUPTED, f"{stdout}\n{stderr}"
    assert f"{target} holds a partial restore; run the same command with --overwrite" in stderr
    assert workspace.cli(*restore[len(workspace.cli_argv()):]).returncode == \
        ExitCode.TARGET_REFUSED

    # SIGTERM or SIGHUP to drbackup alone (`timeout`, a dropped ssh session): restic runs in its
    # own process group, out of the signal's reach; drbackup must stop it and say so, not
    # vanish and leave it writing.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        stopped_target = tmp_path / f"stopped-{signum}"
        stopped = subprocess.Popen(
            [*restore[:restore.index("--target") + 1], str(stopped_target), "--no-progress",
             "--limit-download", "2048"], env=workspace.env(), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        try:
            restored_dir = stopped_target / data.relative_to("/")
            wait_until(restored_dir.is_dir, what="the restore to start")
            stopped.send_signal(signum)
            _, stderr = stopped.communicate(timeout=60)
        finally:
            stopped.kill()
        assert stopped.returncode == 128 + signum, stderr
        assert f"stopped by {signal.Signals(signum).name}" in stderr
        assert not [pid for pid in os.listdir("/proc") if pid.isdigit()
                    and str(stopped_target).encode() in _cmdline(pid)], "restic left running"
        recorded = runs(workspace.state_dir, agency="planning", source="docs", job="restore")
        assert [r.result for r in recorded
                if r.error == f"interrupted ({signal.Signals(signum).name})"] == ["interrupted"]
    finished = workspace.cli(*restore[len(workspace.cli_argv()):], "--overwrite", check=True)
    assert "0 error(s)" in finished.stdout
    assert manifest(target / data.relative_to("/")) == manifest(data)


@pytest.mark.slow
def test_progress_during_a_500_mb_restore(workspace: Workspace, s3_server: MotoServer,
                                          bucket: str, tmp_path: Path) -> None:
    """500 MB from the S3 server. Unthrottled, this machine restores it in ~2 s — before restic's
    first status — which proves nothing; at 32 MiB/s it lasts ~16 s."""
    workspace.add_s3_store("primary", s3_server, bucket)
    _progress_workspace(workspace, tmp_path, 500 << 20, store="primary")
    plain = workspace.cli("restore", "--agency", "planning", "--source", "docs", "--target",
                          str(tmp_path / "plain"), "--limit-download", "32768", check=True)
    assert _check_plain_progress(plain.stderr) >= 3


def test_all_sources_restores_each_source_into_its_own_directory(workspace: Workspace,
                                                                tmp_path: Path) -> None:
    """--all-sources: every source with a snapshot comes back whole (a database source as its
    dump file, a source no longer in the config by its snapshots' tag); a configured source
    without a snapshot is named and makes the exit code non-zero; nothing starts while any
    target is refused."""
    docs, notes = tmp_path / "docs", tmp_path / "notes"
    for folder, count in ((docs, 5), (notes, 3)):
        (folder / "sub").mkdir(parents=True)
        for index in range(count):
            (folder / "sub" / f"{folder.name}-{index}.txt").write_bytes(os.urandom(2000 + index))
    database = permits_sqlite(tmp_path / "permits.sqlite", 50)
    workspace.add_agency("planning")
    workspace.add_directory_source("planning", "docs", [docs])
    workspace.add_directory_source("planning", "notes", [notes])
    workspace.add_source("planning", "permits-db", "sqlite", path=str(database))
    workspace.cli("repo", "init", check=True)
    workspace.cli("backup", "--agency", "planning", "--no-progress", check=True)
    sources = workspace.agency("planning")["sources"]
    sources[:] = [s for s in sources if s["id"] != "notes"]  # gone from the config since
    workspace.add_directory_source("planning", "never", [tmp_path / "never"])

    target = tmp_path / "all"
    (target / "docs").mkdir(parents=True)
    (target / "docs" / "busy.txt").write_text("x")
    refused = workspace.cli("restore", "--agency", "planning", "--all-sources", "--target",
                            str(target))
    assert refused.returncode == ExitCode.TARGET_REFUSED, refused.stderr
    assert sorted(p.name for p in target.iterdir()) == ["docs"]  # nothing else was started
    (target / "docs" / "busy.txt").unlink()
    usage = workspace.cli("restore", "--agency", "planning", "--all-sources", "--include", "x")
    assert usage.returncode == ExitCode.USAGE and "applies to one source" in usage.stderr

    result = workspace.cli("--json", "restore", "--agency", "planning", "--all-sources",
                           "--target", str(target), "--no-progress")
    assert result.returncode == ExitCode.NOT_FOUND, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["source"] for line in lines[:-1]] == ["docs", "permits-db", "notes"]
    assert lines[-1] == {**lines[-1], "event": "total", "sources": 4, "restored": 3,
                         "failed": [], "missing": ["never"]}
    assert manifest(target / "docs" / docs.relative_to("/")) == manifest(docs)
    assert manifest(target / "notes" / notes.relative_to("/")) == manifest(notes)
    assert permits_rows(target / "permits-db" / "permits.sqlite") == (50, "holder 9")
    assert not (target / "never").exists()


def test_all_sources_goes_on_past_a_source_that_fails(workspace: Workspace,
                                                       tmp_path: Path) -> None:
    """One source's restore fails (its directory is a 1 MiB disk, its data 3 MiB): the other
    source is still restored, the failure is one line naming the source and the cause, and the
    exit code and the JSON total say so."""
    big, small = tmp_path / "big", tmp_path / "small"
    big.mkdir()
    small.mkdir()
    for index in range(6):
        (big / f"b{index}.bin").write_bytes(os.urandom(512 * 1024))
    (small / "note.txt").write_text("small\n")
    workspace.add_agency("planning")
    workspace.add_directory_source("planning", "big", [big])
    workspace.add_directory_source("planning", "small", [small])
    workspace.cli("repo", "init", check=True)
    workspace.cli("backup", "--agency", "planning", "--no-progress", check=True)
    target = tmp_path / "all"
    with tiny_tmpfs(target / "big", size="1m"):
        result = workspace.cli("--json", "restore", "--agency", "planning", "--all-sources",
                               "--target", str(target), "--no-progress")
    assert result.returncode == ExitCode.RESTIC_FAILED, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("drbackup: error:")]
    assert len(errors) == 1 and errors[0].startswith("drbackup: error: source big: ")
    assert "no space left on device" in errors[0]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["source"] for line in lines[:-1]] == ["small"]
    assert lines[-1] == {**lines[-1], "event": "total", "sources": 2, "restored": 1,
                         "failed": ["big"], "missing": []}
    assert manifest(target / "small" / small.relative_to("/")) == manifest(small)
