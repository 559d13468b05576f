"""Offline copies across the air gap (#19), real restic, real S3 servers, a real exFAT image
(vfat/exFAT have no symlinks, no permissions, 4 GiB files, case-insensitive names): export onto
a blank medium, an incremental export that writes only what is new, verify at a station without
the password, import into another store with other credentials, byte-identical restores from
the medium alone and from the internal store, and every kind of tampering refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.support.media import medium as mounted_medium
from tests.support.media import read_only_copy
from tests.support.mediaworld import (
    Sides,
    copy_medium,
    export,
    external_host,
    internal_host,
    manifest_of,
    restic,
    signed_by_another_key,
)
from tests.support.servers import IamS3, MotoServer
from tests.support.trees import manifest


@dataclass
class World:
    sides: Sides
    medium: Path
    what: str
    first: dict[str, Any]
    second: dict[str, Any]
    older: Path  # a copy of the medium after the first export (for the replay)
    new_paths: set[str]  # files the second export added to the medium
    s3: MotoServer  # the external side's store
    bucket: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, s3_server: MotoServer, iam_s3: IamS3
          ) -> Iterator[World]:
    root = tmp_path_factory.mktemp("media")
    bucket = f"media-{os.getpid()}-{root.name[-6:].replace('_', '')}".lower()
    external, data = external_host(root, s3_server, bucket)
    public_key = external.state_dir / "evidence" / "ed25519.pub.pem"
    # A restore drill where the data lives: its signed report travels on the medium (§3).
    external.cli("verify", "--agency", "planning", "--kind", "files", check=True)
    with mounted_medium(root / "medium", "exfat") as (medium, what):
        first = export(external, medium, "--label", "disk-a")
        older = copy_medium(medium, root / "older")
        before = set(manifest_of(medium)["report"]["files"])
        (data / "added.txt").write_text("written after the first export\n" * 50)
        (data / "more.bin").write_bytes(os.urandom(128 * 1024))
        external.cli("backup", "--agency", "planning", check=True)
        second = export(external, medium)
        new_paths = set(manifest_of(medium)["report"]["files"]) - before
        internal = internal_host(root, iam_s3, f"{bucket}-internal",
                                 external.passwords["planning"], public_key)
        yield World(Sides(external, internal, data, public_key), medium, what, first, second,
                    older, new_paths, s3_server, bucket)


def _station(world: World, medium: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """drbackup media verify on a transfer station: no config, no password, only the key."""
    env = {"PATH": os.environ["PATH"], "HOME": str(medium.parent),
           "DRBACKUP_CONFIG": str(medium.parent / "no-such-config.toml")}
    return subprocess.run([sys.executable, "-m", "drbackup", "media", "verify", str(medium),
                           "--public-key", str(world.sides.public_key), *extra],
                          capture_output=True, text=True, env=env, check=False, timeout=120)


def test_incremental_export_writes_only_what_is_new_and_restores_on_a_fresh_host(
        world: World, tmp_path: Path) -> None:
    print(f"medium: {world.what}")
    assert world.first["agencies"][0]["initialized"] is True
    assert world.first["files_written"] == world.first["files_total"] > 0
    second = world.second
    # Only the new files were written, and the count and bytes reported are those files'.
    assert second["files_written"] == len(world.new_paths) > 0
    files = manifest_of(world.medium)["report"]["files"]
    assert second["bytes_written"] == sum(files[p]["size"] for p in world.new_paths)
    assert second["files_total"] == len(files) > second["files_written"]
    assert len(second["agencies"][0]["new_snapshots"]) == 1
    # The same repository: the second export added packs, index and a snapshot (and reports),
    # never another config or key.
    assert {p.split("/")[3] for p in world.new_paths if "/repo/" in p} <= {
        "data", "index", "snapshots"}
    assert len(second["agencies"][0]["snapshots"]) == 2
    old = manifest_of(world.older)["report"]["files"]
    assert all(files[p] == entry for p, entry in old.items())  # nothing old rewritten
    # restic's names on the medium: lowercase hex only (case-insensitive file systems).
    assert all(p == p.lower() for p in files if "/repo/" in p)
    assert len({p.lower() for p in files}) == len(files)
    # A host that never saw the source: only the medium and the agency's password.
    password = tmp_path / "pw"
    password.write_text(world.sides.external.passwords["planning"] + "\n")
    target = tmp_path / "restored"
    done = restic(password, world.medium / "agencies" / "planning" / "repo", "restore",
                  "latest", "--target", str(target), cache=tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    restored = target / str(world.sides.data).lstrip("/")
    assert {k: v.sha256 for k, v in manifest(restored).items()} == {
        k: v.sha256 for k, v in manifest(world.sides.data).items()}


def test_the_medium_holds_the_agencys_own_repository_file_for_file(world: World) -> None:
    """A mirror, not a copy made by restic: every object of the agency's repository in the
    store (config, so the same repository id; the key files, so the same password; index,
    snapshots, packs) is on the medium with the same bytes, and nothing else is."""
    client = world.s3.client()
    objects: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=world.bucket):
        for item in page.get("Contents", []):
            key = item["Key"]
            _, _, relative = key.partition("planning/")
            if relative.split("/")[0] not in ("config", "data", "index", "keys", "snapshots"):
                continue  # restic's locks, and the reports drbackup publishes beside
            objects[relative] = client.get_object(Bucket=world.bucket, Key=key)["Body"].read()
    repo = world.medium / "agencies" / "planning" / "repo"
    on_medium = {p.relative_to(repo).as_posix(): p.read_bytes()
                 for p in repo.rglob("*") if p.is_file() and "locks" not in p.parts}
    assert {"config"} < set(objects) and any(k.startswith("keys/") for k in objects)
    assert sorted(on_medium) == sorted(objects)
    assert all(on_medium[k] == v for k, v in objects.items())


def test_report_counts_the_offline_copy_after_the_export(world: World) -> None:
    result = world.sides.external.cli("--json", "report", "--agency", "planning")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    schema = Path(__file__).resolve().parents[3] / "docs" / "schemas" / "report.schema.json"
    jsonschema.validate(document, json.loads(schema.read_text()))
    copy = document["agencies"][0]["offline_copy"]
    assert copy["met"] is True, copy["reason"]
    assert copy["verified_media"] == 1 and copy["max_age_seconds"] == 7 * 86400


def test_verify_at_a_station_without_password(world: World) -> None:
    result = _station(world, world.medium)
    assert result.returncode == 0, result.stderr
    assert "verified" in result.stdout and "restic check" not in result.stdout
    assert "planning: sequence 2, 2 snapshot(s)" in result.stdout


def _tampered(world: World, tmp_path: Path, how: str) -> Path:
    medium = copy_medium(world.medium, tmp_path / how)
    repo = medium / "agencies" / "planning" / "repo"
    if how == "flipped-byte":
        pack = next(p for p in sorted((repo / "data").rglob("*")) if p.is_file())
        raw = bytearray(pack.read_bytes())
        raw[len(raw) // 2] ^= 0x01
        pack.write_bytes(bytes(raw))
    elif how == "removed-file":
        next(p for p in sorted((repo / "index").iterdir())).unlink()
    elif how == "added-file":
        (repo / "snapshots" / ("ab" * 32)).write_bytes(b"not a snapshot")
    elif how == "truncated-manifest":
        text = (medium / "drbackup-media.json").read_bytes()
        (medium / "drbackup-media.json").write_bytes(text[: len(text) // 2])
    elif how == "unknown-key":
        envelope = manifest_of(medium)
        (medium / "drbackup-media.json").write_bytes(signed_by_another_key(envelope["report"]))
    return medium


REFUSALS = {
    "flipped-byte": "altered (SHA-256 differs",
    "removed-file": "missing",
    "added-file": "extra (not in the manifest)",
    "truncated-manifest": "truncated or not JSON",
    "unknown-key": "not the trusted key",
}


@pytest.mark.parametrize("how", sorted(REFUSALS))
def test_tampered_medium_is_refused_by_verify_and_import(world: World, tmp_path: Path,
                                                         how: str) -> None:
    medium = _tampered(world, tmp_path, how)
    verified = _station(world, medium)
    assert verified.returncode == 26, verified.stdout + verified.stderr
    assert REFUSALS[how] in verified.stderr, verified.stderr
    imported = world.sides.internal.cli("media", "import", str(medium), "--agency", "planning")
    assert imported.returncode == 26, imported.stdout + imported.stderr
    assert REFUSALS[how] in imported.stderr
    assert "Traceback" not in imported.stderr
    runs = world.sides.internal.cli("--json", "media", "list")
    assert runs.returncode == 0, runs.stderr
    # Nothing imported: the internal store has no repository for the agency yet, or at most
    # what an earlier, genuine import put there (the import test runs in another order).
    state = world.sides.internal.state_dir / "state.db"
    if state.exists():
        rows = subprocess.run(["sqlite3", str(state), "SELECT label, sequence FROM "
                               "media_imports"], capture_output=True, text=True, check=True)
        assert "disk-a|1" not in rows.stdout


def test_import_into_a_second_store_with_other_credentials(world: World, tmp_path: Path
                                                           ) -> None:
    """From the medium mounted read-only (a one-way import device, a write-protected disk):
    restic reads it without its lock; into the internal store with its own credentials;
    the drill report carried on the medium shows in the internal side's report."""
    internal = world.sides.internal
    with read_only_copy(world.medium, tmp_path / "device") as device:
        with pytest.raises(OSError):  # it really is read-only
            (device / "probe").write_bytes(b"")
        checked = internal.cli("media", "verify", str(device))  # with the password here
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "planning: sequence 2, 2 snapshot(s) (restic check passed)" in checked.stdout
        first = internal.cli("--json", "media", "import", str(device), "--agency", "planning")
    assert first.returncode == 0, first.stderr
    outcome = json.loads(first.stdout)
    assert outcome["initialized"] is True and len(outcome["copied"]) == 2
    assert outcome["store_snapshots"] == 2 and outcome["reports"] >= 1
    report = internal.cli("--json", "report", "--agency", "planning")
    assert report.returncode == 0, report.stderr
    document = json.loads(report.stdout)
    schema = Path(__file__).resolve().parents[3] / "docs" / "schemas" / "report.schema.json"
    jsonschema.validate(document, json.loads(schema.read_text()))
    [drill] = [e for e in document["agencies"][0]["evidence_from_media"] if e["kind"] == "drill"]
    assert drill["source"] == "documents" and drill["verdict"] == "pass"
    assert drill["medium"] == "disk-a" and drill["host"] != "" and drill["finished_at"]
    text = internal.cli("report", "--agency", "planning")
    assert "from medium disk-a (done on" in text.stdout and "drill files of documents: pass" \
        in text.stdout, text.stdout
    # Replays refused: the same medium again, an older one after the newer.
    again = internal.cli("media", "import", str(world.medium), "--agency", "planning")
    assert again.returncode == 26 and "replayed or older medium" in again.stderr
    older = internal.cli("media", "import", str(world.older), "--agency", "planning")
    assert older.returncode == 26 and "sequence 1" in older.stderr
    # The internal store's repository: restic check passes, a restore is byte-identical.
    check = internal.cli("verify", "--agency", "planning", "--kind", "check", "--read-data")
    assert check.returncode == 0, check.stdout + check.stderr
    target = tmp_path / "restored"
    restored = internal.cli("restore", "--agency", "planning", "--source", "documents",
                            "--target", str(target))
    assert restored.returncode == 0, restored.stderr
    tree = target / str(world.sides.data).lstrip("/")
    if not tree.exists():
        tree = target
    assert {k: v.sha256 for k, v in manifest(tree).items()} == {
        k: v.sha256 for k, v in manifest(world.sides.data).items()}
