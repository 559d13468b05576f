"""The offline-media runbooks (#19 §6), executed: rotate the media, carry a backup into the
internal network and import it, restore an agency from a medium on a fresh host. One world per
module, cheap on purpose: local stores, a few KB of data, plain directories as media (the
filesystems themselves are tested in tests/integration/media/), the fresh host's medium
bind-mounted read-only where the kernel allows it."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from drbackup.cli.main import main
from tests.runbooks.markdown import RUNBOOKS
from tests.runbooks.test_runbooks import execute
from tests.support.kits import printed_signer
from tests.support.media import read_only
from tests.support.offsite import small_tree
from tests.support.trees import manifest
from tests.support.workspace import Workspace

AGENCY, SOURCE = "planning", "documents"
MEDIA_RUNBOOKS = ("rotate-offline-media.md", "carry-into-internal-network.md",
                  "restore-from-offline-medium.md")


@dataclass
class World:
    root: Path
    external: Workspace
    internal: Workspace
    data: Path
    kit: Path
    identity: Path


def _setup(ws: Workspace, *args: str) -> None:
    ws.write()
    assert main(["--config", str(ws.config_path), *args]) == 0, args


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, restic_binary: str) -> Iterator[World]:
    root = tmp_path_factory.mktemp("media-runbooks")
    external = Workspace(root / "external")
    external.config["daemon"]["restic"] = restic_binary
    external.config["stores"]["local"] = {"path": str(root / "external-store")}
    external.add_agency(AGENCY, offline={"media_set": 2, "max_age": "7d"})
    data = small_tree(root / "data")
    external.add_directory_source(AGENCY, SOURCE, [data])
    _setup(external, "repo", "init")
    _setup(external, "backup", "--agency", AGENCY)
    keys, kits = root / "keys", root / "kits"
    _setup(external, "recovery-kit", "keygen", "--out", str(keys / "identity"))
    _setup(external, "recovery-kit", "create", "--recipient", str(keys / "identity.pub"),
           "--out", str(kits), "--no-upload")
    internal = Workspace(root / "internal")
    internal.config["daemon"]["restic"] = restic_binary
    internal.config["stores"]["local"] = {"path": str(root / "internal-store")}
    internal.add_agency(AGENCY, password=external.passwords[AGENCY], offline={
        "public_key": str(external.state_dir / "evidence" / "ed25519.pub.pem")})
    internal.add_directory_source(AGENCY, SOURCE, [data])
    internal.write()
    yield World(root, external, internal, data, kits / "drbackup-recovery-kit-all.kit",
                keys / "identity")


def _run(world: World, name: str, extra: dict[str, str]) -> str:
    path = RUNBOOKS / "en" / name
    work = world.root / name.removesuffix(".md")
    (work / "home").mkdir(parents=True)
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "HOME": str(work / "home"), "LANG": "C.UTF-8", "AGENCY": AGENCY, "SOURCE": SOURCE,
           **extra}
    for passed in ("TMPDIR", "PYTHONPATH"):
        if passed in os.environ:
            env[passed] = os.environ[passed]
    return execute(path, work, env)[0]


def _rotation_brings_a_blank_medium_into_the_set(world: World) -> None:
    medium = world.root / "safe-a"
    medium.mkdir()
    output = _run(world, "rotate-offline-media.md", {
        "MEDIUM": str(medium), "LABEL": "safe-a", "WHERE": "safe 2",
        "DRBACKUP_CONFIG": str(world.external.config_path)})
    assert "planning: 0 verified medium/media, the rotation set is 2" in output
    assert re.search(r"^safe-a\s+planning\s+1\s+verified\s", output, re.M), output
    assert (medium / "drbackup-media.json").is_file()
    assert not (medium / "drbackup-media.incomplete").exists()


def _carrying_into_the_internal_network_imports_into_the_internal_store(
        world: World) -> None:
    medium = world.root / "transfer"
    medium.mkdir()
    output = _run(world, "carry-into-internal-network.md", {
        "MEDIUM": str(medium), "LABEL": "transfer-1",
        "EXTERNAL_CONFIG": str(world.external.config_path),
        "INTERNAL_CONFIG": str(world.internal.config_path),
        "PUBLIC_KEY": str(world.external.state_dir / "evidence" / "ed25519.pub.pem")})
    assert "exit code: 26" in output
    assert world.external.passwords[AGENCY] not in output
    # The internal store holds the snapshot now (import ran restic check on it; a restore from
    # an imported repository is byte-identical in tests/integration/media/test_media_roundtrip.py).
    repository = world.root / "internal-store" / AGENCY
    assert len(list((repository / "snapshots").iterdir())) == 1
    assert "1 new snapshot(s), 1 in the store" in output


def _a_fresh_host_restores_from_the_medium_alone(world: World) -> None:
    """The stores are gone; the fresh host has the kit, the identity key and the medium."""
    store = world.root / "external-store"
    gone = store.with_name("external-store.gone")
    store.rename(gone)
    work = world.root / "fresh-host"
    work.mkdir()
    target = work / "restore-target"
    try:
        # The medium the rotation put in the safe.
        with read_only(world.root / "safe-a", work / "medium") as (medium, is_read_only):
            print(f"medium read-only: {is_read_only}")
            output = _run(world, "restore-from-offline-medium.md", {
                "MEDIUM": str(medium), "KIT": str(world.kit), "IDENTITY": str(world.identity),
                "SIGNER_FINGERPRINT": printed_signer(world.kit.with_suffix(".txt")),
                "RECOVERY_DIR": str(work / "recovery"), "TARGET": str(target)})
    finally:
        gone.rename(store)
    assert "from medium safe-a into" in output
    assert world.external.passwords[AGENCY] not in output
    assert manifest(target / SOURCE / world.data.relative_to("/")) == manifest(world.data)


def test_the_offline_media_runbooks_rotate_carry_across_and_restore(world: World) -> None:
    """In the order of a year: rotations, transfers to the internal network, then the bad day.
    One test, so pytest-xdist builds the world once (it splits a module's tests over workers)."""
    _rotation_brings_a_blank_medium_into_the_set(world)
    _carrying_into_the_internal_network_imports_into_the_internal_store(world)
    _a_fresh_host_restores_from_the_medium_alone(world)
