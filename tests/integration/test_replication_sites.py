"""Replication across sites (#18) against two real IAM-enforcing moto servers, each accepting only
its own keys, and real restic: backup on one, replicate to the other (the replica written through
restic's rclone backend with an in-memory rclone config), `restic check` on the replica, a
byte-identical restore from the replica alone; each server's request log holds only its own
key; no secret in argv or logs; a copy cut by its time window (with a bandwidth limit) resumes
and the lag is right; wrong-site replicas are refused in one line."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psutil
import pytest

import drbackup.jobs.replica_site as replica_site
from drbackup.engine import CopyCut
from drbackup.jobs.replicate import last_replication_status, run_replication
from drbackup.store.credentials import S3Credentials
from tests.support.faultproxy import FaultProxy
from tests.support.iampolicy import read_recording
from tests.support.offsite import runtime, small_tree
from tests.support.servers import IamS3
from tests.support.tlsproxy import TlsProxy
from tests.support.trees import manifest
from tests.support.workspace import Workspace


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[IamS3, IamS3]]:
    """The city's data centre and the DR centre: two servers, two key sets, both recorded."""
    root = tmp_path_factory.mktemp("sites")
    city = IamS3.start(root / "city", record=root / "city.jsonl")
    dr = IamS3.start(root / "dr", record=root / "dr.jsonl")
    yield city, dr
    city.stop()
    dr.stop()


def _store(workspace: Workspace, name: str, site: IamS3, bucket: str, **extra: object) -> None:
    workspace.add_s3_store(name, site.server, bucket, access_key=site.admin.access_key_id,
                           secret_key=site.admin.secret_access_key, **extra)


def _secrets(*keys: S3Credentials) -> list[str]:
    return [k.secret_access_key for k in keys]


def _watch_processes(stop: threading.Event, seen: list[tuple[list[str], dict[str, str]]]
                     ) -> None:
    """Every restic/rclone process this test started (not another xdist worker's), with its
    argv and environment, while replication runs."""
    me = os.getpid()
    while not stop.is_set():
        for proc in psutil.process_iter(["name", "cmdline"]):
            try:
                if (proc.info["name"] in ("restic", "rclone")
                        and any(p.pid == me for p in proc.parents())):
                    seen.append((list(proc.info["cmdline"] or []), proc.environ()))
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        time.sleep(0.05)


def test_cross_credential_replica_checks_restores_alone_and_keys_stay_home(
        workspace: Workspace, sites: tuple[IamS3, IamS3], bucket: str, tmp_path: Path) -> None:
    city, dr = sites
    data = small_tree(tmp_path / "data")
    (data / "blob.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    _store(workspace, "city", city, bucket)
    _store(workspace, "dr", dr, f"{bucket}-dr")
    workspace.add_agency("planning", store="city", replicas=["dr"])
    workspace.add_directory_source("planning", "documents", [data])
    workspace.cli("repo", "init", "--store", "city", check=True)
    workspace.cli("backup", "--agency", "planning", check=True)

    stop, seen = threading.Event(), []  # type: ignore[var-annotated]
    watcher = threading.Thread(target=_watch_processes, args=(stop, seen), daemon=True)
    watcher.start()
    try:
        result = workspace.cli("--json", "replicate", "--agency", "planning")
    finally:
        stop.set()
        watcher.join()
    assert result.returncode == 0, result.stderr
    [outcome] = json.loads(result.stdout)
    assert len(outcome["copied"]) == 1 and outcome["lag_seconds"] == 0

    rt = runtime(workspace)
    agency = rt.config.agency("planning")
    assert rt.restic.check(rt.target(agency, "dr"), read_data=True).ok
    rt.close()

    # Restore from the replica alone: a config that knows only the DR centre.
    alone = Workspace(tmp_path / "dr-only")
    alone.config["daemon"]["restic"] = workspace.config["daemon"]["restic"]
    _store(alone, "dr", dr, f"{bucket}-dr")
    alone.add_agency("planning", store="dr", password=workspace.passwords["planning"])
    alone.add_directory_source("planning", "documents", [data])
    target = tmp_path / "restored"
    alone.cli("restore", "--agency", "planning", "--source", "documents",
              "--target", str(target), check=True)
    assert manifest(target / data.relative_to("/")) == manifest(data)

    # Each server saw only its own key; no secret crossed, nor reached argv or the output.
    for site, other in ((city, dr), (dr, city)):
        assert site.server.record is not None
        requests = read_recording(site.server.record)
        keys = {r.access_key for r in requests} - {None}
        assert other.admin.access_key_id not in keys
        assert site.admin.access_key_id in keys
        raw = site.server.record.read_bytes()
        assert other.admin.secret_access_key.encode() not in raw
    secrets = _secrets(city.admin, dr.admin)
    assert seen, "no restic process was observed"
    assert any("rclone" in " ".join(argv) for argv, _ in seen), "rclone was not used"
    copies = [(argv, env) for argv, env in seen if "copy" in argv]
    assert copies, "no restic copy was observed"
    for argv, _env in seen:
        assert not any(s in word for s in secrets for word in argv)
    for _argv, env in copies:
        # The copy's environment holds the source's key only; the replica's is in a memfd.
        assert dr.admin.secret_access_key not in env.values()
        assert env.get("RCLONE_CONFIG", "").startswith("/dev/fd/"), sorted(env)
        assert env["RESTIC_REPOSITORY"].startswith("rclone:")
    for text in (result.stdout, result.stderr):
        assert not any(s in text for s in secrets)


def test_copy_cut_by_its_window_resumes_next_run_with_the_lag_right(
        workspace: Workspace, sites: tuple[IamS3, IamS3], bucket: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    city, dr = sites
    data = tmp_path / "data"
    data.mkdir()
    _store(workspace, "city", city, bucket)
    # 256 KiB/s into the DR centre, by night only.
    _store(workspace, "dr", dr, f"{bucket}-dr", limit_upload="256KiB", copy_window="20:00-06:00")
    workspace.add_agency("planning", store="city", replicas=["dr"])
    workspace.add_directory_source("planning", "documents", [data])
    workspace.cli("repo", "init", check=True)
    for index in range(3):
        (data / f"part-{index}.bin").write_bytes(os.urandom(1024 * 1024))
        workspace.cli("backup", "--agency", "planning", check=True)
    rt = runtime(workspace)
    agency = rt.config.agency("planning")

    # By day the window is closed: nothing runs, exit 28, one line.
    monkeypatch.setattr(replica_site, "now",
                        lambda: datetime.now().astimezone().replace(hour=12, minute=0))
    with pytest.raises(replica_site.OutsideCopyWindow) as closed:
        run_replication(rt, agency, "dr")
    assert closed.value.exit_code == 28 and "opens" in closed.value.message

    # Three seconds before the window ends: the 3 MiB at 256 KiB/s cannot all go.
    monkeypatch.setattr(replica_site, "now",
                        lambda: datetime.now().astimezone().replace(
                            hour=5, minute=59, second=57))
    with pytest.raises(CopyCut) as cut:
        run_replication(rt, agency, "dr")
    assert cut.value.exit_code == 28 and "left" in cut.value.message
    primary = rt.restic.snapshots(rt.target(agency))
    status = last_replication_status(rt.state, "planning", "dr")
    assert status is not None and status.uncopied
    oldest_missing = min(s.time.timestamp() for s in primary if s.id in status.uncopied)
    assert status.oldest_uncopied_time == pytest.approx(oldest_missing)
    assert status.lag_seconds > 0

    # The next night (the link is free: no limit now): the copy resumes and completes.
    monkeypatch.setattr(replica_site, "now",
                        lambda: datetime.now().astimezone().replace(hour=22, minute=0))
    rt.close()
    del workspace.config["stores"]["dr"]["limit_upload"]
    rt = runtime(workspace)
    outcome = run_replication(rt, agency, "dr")
    assert sorted(outcome.copied) == sorted(status.uncopied)
    assert outcome.lag_seconds == 0
    copies = rt.restic.snapshots(rt.target(agency, "dr"))
    assert sorted(c.original or "" for c in copies) == sorted(s.id for s in primary)
    assert rt.restic.check(rt.target(agency, "dr")).ok
    rt.close()


def test_a_replica_that_is_the_primary_or_another_agencys_is_refused(
        workspace: Workspace, sites: tuple[IamS3, IamS3], bucket: str, tmp_path: Path) -> None:
    city, dr = sites
    _store(workspace, "city", city, bucket)
    # The same bucket, spelt another way (localhost for 127.0.0.1): the same repository.
    workspace.add_s3_store("alias", city.server, bucket,
                           access_key=city.admin.access_key_id,
                           secret_key=city.admin.secret_access_key)
    workspace.config["stores"]["alias"]["url"] = (
        f"s3:http://localhost:{city.server.port}/{bucket}")
    _store(workspace, "dr", dr, f"{bucket}-dr")
    workspace.add_agency("planning", store="city", replicas=["alias", "dr"])
    workspace.add_directory_source("planning", "documents", [small_tree(tmp_path / "d")])
    workspace.cli("repo", "init", "--store", "city", check=True)
    workspace.cli("backup", "--agency", "planning", check=True)

    same = workspace.cli("replicate", "--agency", "planning", "--replica", "alias")
    assert same.returncode == 14, same.stderr
    lines = [line for line in same.stderr.splitlines()
             if "primary repository itself" in line and not line.startswith("{")]
    assert len(lines) == 1  # one line (and its JSON log record)

    # The DR repository holds another agency's snapshots (made with the same password).
    rt = runtime(workspace)
    agency = rt.config.agency("planning")
    rt.restic.init(rt.target(agency, "dr"))
    other = small_tree(tmp_path / "parks")
    rt.restic.backup(rt.target(agency, "dr"), [str(other)], tags=["agency=parks"])
    rt.close()
    foreign = workspace.cli("replicate", "--agency", "planning", "--replica", "dr")
    assert foreign.returncode == 14, foreign.stderr
    assert "another agency" in foreign.stderr
    assert dr.client().list_objects_v2(Bucket=f"{bucket}-dr", Prefix="planning/snapshots/")[
        "KeyCount"] == 1  # only parks' snapshot: nothing was copied


def test_private_cas_on_both_sites_are_trusted_through_ca_file(
        workspace: Workspace, sites: tuple[IamS3, IamS3], bucket: str, tmp_path: Path) -> None:
    """Each store behind TLS signed by its own private CA: boto3 (verify=ca_file), restic
    (--cacert) and the rclone child writing the replica (RCLONE_CA_CERT) each trust it."""
    city, dr = sites
    city_tls = TlsProxy(city.server.port, tmp_path / "pki", "city").start()
    dr_tls = TlsProxy(dr.server.port, tmp_path / "pki", "dr").start()
    try:
        for name, site, tls in (("city", city, city_tls), ("dr", dr, dr_tls)):
            workspace.add_s3_store(name, site.server, f"{bucket}-{name}",
                                   access_key=site.admin.access_key_id,
                                   secret_key=site.admin.secret_access_key,
                                   ca_file=str(tls.ca_file))
            workspace.config["stores"][name]["url"] = tls.url(f"{bucket}-{name}")
        workspace.add_agency("planning", store="city", replicas=["dr"])
        data = small_tree(tmp_path / "data")
        workspace.add_directory_source("planning", "documents", [data])
        workspace.cli("repo", "init", "--store", "city", check=True)
        workspace.cli("backup", "--agency", "planning", check=True)

        # Without its CA the DR centre's certificate is not trusted: refused, nothing copied.
        del workspace.config["stores"]["dr"]["ca_file"]
        untrusted = workspace.cli("replicate", "--agency", "planning")
        assert untrusted.returncode != 0
        assert "ssl" in untrusted.stderr.lower()

        workspace.config["stores"]["dr"]["ca_file"] = str(dr_tls.ca_file)
        result = workspace.cli("--json", "replicate", "--agency", "planning")
        assert result.returncode == 0, result.stderr
        assert len(json.loads(result.stdout)[0]["copied"]) == 1
        rt = runtime(workspace)
        agency = rt.config.agency("planning")
        assert rt.restic.check(rt.target(agency, "dr")).ok
        rt.close()
    finally:
        city_tls.stop()
        dr_tls.stop()


def test_copy_cut_by_the_replica_site_going_away_resumes_with_the_lag_right(
        workspace: Workspace, sites: tuple[IamS3, IamS3], bucket: str, tmp_path: Path) -> None:
    """The DR centre disappears mid-copy (every connection refused: the site is down for this
    host): the run fails with one line, the lag counts every snapshot not there; once the site
    is back the next run completes and the lag is 0."""
    city, dr = sites
    data = tmp_path / "data"
    data.mkdir()
    with FaultProxy(dr.server.port) as proxy:
        _store(workspace, "city", city, bucket)
        _store(workspace, "dr", dr, f"{bucket}-dr")
        workspace.config["stores"]["dr"]["url"] = f"s3:{proxy.endpoint}/{bucket}-dr"
        workspace.config["daemon"]["restic_timeout"] = "20s"
        workspace.add_agency("planning", store="city", replicas=["dr"])
        workspace.add_directory_source("planning", "documents", [data])
        workspace.cli("repo", "init", check=True)
        for index in range(3):
            (data / f"part-{index}.bin").write_bytes(os.urandom(1024 * 1024))
            workspace.cli("backup", "--agency", "planning", check=True)
        proxy.outage_after(600 * 1024, "refuse")
        cut = workspace.cli("replicate", "--agency", "planning")
        assert cut.returncode != 0
        assert proxy.wait_for_outage(1)
        rt = runtime(workspace)
        agency = rt.config.agency("planning")
        primary = rt.restic.snapshots(rt.target(agency))
        status = last_replication_status(rt.state, "planning", "dr")
        assert status is not None and status.uncopied and not status.complete
        assert status.oldest_uncopied_time is not None
        assert status.oldest_uncopied_time <= max(s.time.timestamp() for s in primary)
        rt.close()

        proxy.set_outage(None)
        resumed = workspace.cli("--json", "replicate", "--agency", "planning")
        assert resumed.returncode == 0, resumed.stderr
        assert json.loads(resumed.stdout)[0]["lag_seconds"] == 0
        rt = runtime(workspace)
        copies = rt.restic.snapshots(rt.target(agency, "dr"))
        assert sorted(c.original or "" for c in copies) == sorted(s.id for s in primary)
        assert rt.restic.check(rt.target(agency, "dr")).ok
        status = last_replication_status(rt.state, "planning", "dr")
        assert status is not None and status.complete and status.lag_seconds == 0
        rt.close()
