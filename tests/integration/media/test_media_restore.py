"""The bad day when the medium is all that is left (#19 §4): the stores are gone, a fresh host has
the recovery kit and the medium, mounted read-only. `snapshots`, `ls`, `restore --from-media`
read the medium's repository (restic --no-lock), byte-identical (in this process: the runbook
test runs the same on a fresh HOME, drbackup as its own process); an incomplete medium is refused
with 27, an altered one or one signed by another key with 26, before restic reads anything."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from drbackup.cli.main import main
from tests.support.kits import printed_signer
from tests.support.media import medium as mounted_medium
from tests.support.media import read_only
from tests.support.mediaworld import copy_medium, manifest_of, signed_by_another_key
from tests.support.offsite import small_tree
from tests.support.trees import manifest
from tests.support.workspace import Workspace

AGENCY, SOURCE = "planning", "documents"


@dataclass
class World:
    root: Path
    data: Path
    medium: Path  # read-only view of the exported medium
    read_only: bool
    copy: Path  # a writable copy of the medium, to damage
    fresh: Path  # the fresh host's config, written by recovery-kit open
    exporter: Path  # the exporting host's config (its state holds the guard's verdicts)
    password: str
    printout: str
    snapshots: list[str]  # the manifest's snapshot ids (the source's)


def _here(capsys: pytest.CaptureFixture[str], config: Path, *args: str
          ) -> subprocess.CompletedProcess[str]:
    """The same in this process (cheaper): for the refusals, which end before restic runs."""
    capsys.readouterr()
    code = main(["--config", str(config), *args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out, err)


def _setup(config: Path, *args: str) -> None:
    assert main(["--config", str(config), *args]) == 0, args


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, restic_binary: str) -> Iterator[World]:
    root = tmp_path_factory.mktemp("media-restore")
    external = Workspace(root / "external")
    external.config["daemon"]["restic"] = restic_binary
    external.config["stores"]["local"] = {"path": str(root / "store")}
    external.add_agency(AGENCY, offline={"media_set": 2, "max_age": "7d"})
    data = small_tree(root / "data")
    (data / "blob.bin").write_bytes(os.urandom(192 * 1024))
    external.add_directory_source(AGENCY, SOURCE, [data])
    config = external.write()
    _setup(config, "repo", "init")
    _setup(config, "backup", "--agency", AGENCY)
    keys, kits = root / "keys", root / "kits"
    _setup(config, "recovery-kit", "keygen", "--out", str(keys / "identity"))
    _setup(config, "recovery-kit", "create", "--recipient", str(keys / "identity.pub"), "--out",
           str(kits), "--no-upload")
    kit = kits / "drbackup-recovery-kit-all.kit"
    with mounted_medium(root / "medium", "ext4", size_mib=32) as (medium, what):
        print(f"medium: {what}")
        _setup(config, "media", "export", "--agency", AGENCY, "--to", str(medium), "--label",
               "safe-a")
        copy = copy_medium(medium, root / "copy")
        # The stores are gone: only the medium (and the kit) are left.
        shutil.rmtree(root / "store")
        opened = root / "fresh" / "kit"
        _setup(config, "recovery-kit", "open", "--identity", str(keys / "identity"), "--kit",
               str(kit), "--out", str(opened), "--signer-fingerprint",
               printed_signer(kit.with_suffix(".txt")))
        with read_only(medium, root / "ro") as (view, is_read_only):
            yield World(root, data, view, is_read_only, copy, opened / "drbackup.toml", config,
                        external.passwords[AGENCY], kit.with_suffix(".txt").read_text(),
                        [s["id"] for s in manifest_of(medium)["report"]["agencies"][AGENCY]
                         ["snapshots"]])


def _fresh_host_with_the_kit_restores_from_a_read_only_medium(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    # The kit's printout says how, with the exact command.
    assert (f"drbackup restore --from-media /media/MEDIUM --agency {AGENCY} --all-sources "
            "--target /srv/restore") in world.printout
    listed = _here(capsys, world.fresh, "--json", "snapshots", "--from-media", str(world.medium),
                    "--agency", AGENCY)
    assert listed.returncode == 0, listed.stderr
    snapshots = json.loads(listed.stdout)
    assert len(snapshots) == len(world.snapshots) == 1
    assert snapshots[0]["source"] == SOURCE
    files = _here(capsys, world.fresh, "ls", "--from-media", str(world.medium), "--agency", AGENCY,
                   "--source", SOURCE)
    assert files.returncode == 0, files.stderr
    assert "blob.bin" in files.stdout and "signed by test-host (key" in files.stdout
    target = world.root / "restored"
    restored = _here(capsys, world.fresh, "restore", "--from-media", str(world.medium),
                     "--agency", AGENCY, "--source", SOURCE, "--target", str(target),
                     "--no-progress")
    assert restored.returncode == 0, restored.stderr
    assert f"of {AGENCY}/{SOURCE} from medium safe-a into" in restored.stdout
    assert "from [agencies.offline] public_key of planning" in restored.stdout
    assert manifest(target / world.data.relative_to("/")) == manifest(world.data)
    assert world.password not in restored.stdout + restored.stderr
    print(f"medium read-only: {world.read_only}")
    if world.read_only:
        assert not list((world.medium / "agencies" / AGENCY / "repo" / "locks").iterdir())


def _last_clean_on_the_exporting_host_finds_the_clean_snapshot_on_the_medium(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """The exporting host's guard judged the source snapshot; the medium, a mirror of the
    repository, holds that very snapshot (the same id): --last-clean takes it, its store gone."""
    target = world.root / "last-clean"
    result = _here(capsys, world.exporter, "restore", "--from-media", str(world.medium),
                   "--agency", AGENCY, "--source", SOURCE, "--last-clean", "--target",
                   str(target), "--no-progress")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"last clean snapshot {world.snapshots[0][:8]}" in result.stdout
    assert f"from snapshot {world.snapshots[0][:8]}" in result.stdout
    assert manifest(target / world.data.relative_to("/")) == manifest(world.data)


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("drbackup: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def _an_incomplete_medium_is_refused_with_27(world: World, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    medium = copy_medium(world.copy, tmp_path / "pulled")
    (medium / "drbackup-media.incomplete").write_text("export started\n")
    result = _here(capsys, world.fresh,
                   "restore", "--from-media", str(medium), "--agency", AGENCY,
                   "--source", SOURCE, "--target", str(tmp_path / "t"))
    assert result.returncode == 27, result.stderr
    assert "is incomplete" in _one_line(result)
    (medium / "drbackup-media.json").unlink()  # a blank medium whose first export was cut
    result = _here(capsys, world.fresh,
                   "ls", "--from-media", str(medium), "--agency", AGENCY, "--source", SOURCE)
    assert result.returncode == 27 and "did not finish" in _one_line(result)
    assert not (tmp_path / "t").exists()


def _an_altered_or_foreign_medium_is_refused_with_26(world: World, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    medium = copy_medium(world.copy, tmp_path / "added")
    snapshots = medium / "agencies" / AGENCY / "repo" / "snapshots"
    existing = next(snapshots.iterdir())
    shutil.copy(existing, snapshots / ("0" * 64))  # a snapshot the exporter never wrote
    result = _here(capsys, world.fresh,
                   "snapshots", "--from-media", str(medium), "--agency", AGENCY)
    assert result.returncode == 26
    assert f"snapshots/{'0' * 64}: extra (not in the manifest)" in _one_line(result)

    medium = copy_medium(world.copy, tmp_path / "altered")
    index = next((medium / "agencies" / AGENCY / "repo" / "index").iterdir())
    body = bytearray(index.read_bytes())
    body[len(body) // 2] ^= 0x01
    index.write_bytes(bytes(body))
    result = _here(capsys, world.fresh,
                   "restore", "--from-media", str(medium), "--agency", AGENCY,
                   "--source", SOURCE, "--target", str(tmp_path / "t"))
    assert result.returncode == 26 and "altered" in _one_line(result)

    medium = copy_medium(world.copy, tmp_path / "forged")
    forged = signed_by_another_key(manifest_of(medium)["report"])
    (medium / "drbackup-media.json").write_bytes(forged)
    result = _here(capsys, world.fresh,
                   "ls", "--from-media", str(medium), "--agency", AGENCY, "--source", SOURCE)
    assert result.returncode == 26 and "not written by the trusted host" in _one_line(result)
    assert not (tmp_path / "t").exists()


def _without_a_known_key_it_reads_and_says_the_signature_was_not_checked(
        world: World, tmp_path: Path, restic_binary: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    bare = Workspace(tmp_path / "bare")
    bare.config["daemon"]["restic"] = restic_binary
    bare.add_agency(AGENCY, password=world.password)
    bare.write()
    result = _here(capsys, bare.config_path, "snapshots", "--from-media", str(world.medium),
                   "--agency", AGENCY)
    assert result.returncode == 0, result.stderr
    assert "signature was NOT checked" in result.stderr and "1 snapshot(s)" in result.stdout
    both = _here(capsys, bare.config_path, "restore", "--from-media", str(world.medium),
                 "--from-replica", "x", "--agency", AGENCY, "--source", SOURCE)
    assert both.returncode != 0 and "exclude each other" in _one_line(both)


# One test, not six: the module-scoped world costs a backup, a kit and an export (restic's key
# derivation at each init is most of it), and pytest-xdist hands a module's tests to different
# workers, each of which would build the world again.
def test_a_fresh_host_reads_a_read_only_medium_and_refuses_a_bad_one(
        world: World, tmp_path: Path, restic_binary: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    _fresh_host_with_the_kit_restores_from_a_read_only_medium(world, capsys)
    _last_clean_on_the_exporting_host_finds_the_clean_snapshot_on_the_medium(world, capsys)
    _without_a_known_key_it_reads_and_says_the_signature_was_not_checked(
        world, tmp_path, restic_binary, capsys)
    _an_incomplete_medium_is_refused_with_27(world, tmp_path / "27", capsys)
    _an_altered_or_foreign_medium_is_refused_with_26(world, tmp_path / "26", capsys)
