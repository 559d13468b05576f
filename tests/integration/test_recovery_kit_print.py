"""The printed recovery kit is enough: `recovery-kit create --pdf` writes a PDF whose QR codes,
rendered to images (pdftoppm) and decoded (zbarimg --raw), open on a fresh host (new HOME, no
config, no state) into a config from which the latest snapshot restores byte-identical. Parts
in any order work; a missing or altered part fails with one line and writes nothing."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from drbackup.errors import ExitCode
from tests.support.kits import printed_signer
from tests.support.servers import TEST_SECRET_KEY, MotoServer
from tests.support.trees import make_mixed_tree, manifest
from tests.support.workspace import Workspace


@dataclass
class Printed:
    ws: Workspace
    data: Path
    pdf: Path
    identity: Path
    parts: list[str]  # what zbarimg read from the PDF's pages


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory, s3_server: MotoServer,
            restic_binary: str) -> Printed:
    """One kit for the module (its tests only read it): a backed-up agency, the PDF, the scan."""
    for tool in ("pdftoppm", "zbarimg"):  # a failure, not a skip: CI must exercise the paper
        assert shutil.which(tool), f"{tool} is missing: scripts/setup.sh installs it"
    tmp_path = tmp_path_factory.mktemp("printed-kit")
    workspace = Workspace(tmp_path / "ws")
    workspace.config["daemon"]["restic"] = restic_binary
    data = tmp_path / "planning-data"
    make_mixed_tree(data, big_bytes=256 * 1024, small_files=30)
    workspace.add_s3_store("primary", s3_server, f"kitpdf-{uuid.uuid4().hex[:10]}")
    workspace.add_agency("planning", store="primary")
    workspace.add_directory_source("planning", "documents", [data])
    workspace.add_agency("roads")  # a second agency (local store): a kit of several QR codes
    workspace.cli("repo", "init", "--store", "primary", check=True)
    workspace.cli("backup", "--agency", "planning", check=True)
    keys = tmp_path / "keys"
    workspace.cli("recovery-kit", "keygen", "--out", str(keys / "identity"), check=True)
    created = workspace.cli("recovery-kit", "create", "--recipient", str(keys / "identity.pub"),
                            "--include-s3-credentials", "--pdf", "--out",
                            str(tmp_path / "kits"), check=True)
    pdf = tmp_path / "kits" / "drbackup-recovery-kit-all.pdf"
    assert str(pdf) in created.stdout
    assert pdf.read_bytes().startswith(b"%PDF-")

    pages = tmp_path / "pages"
    pages.mkdir()
    subprocess.run(["pdftoppm", "-r", "150", "-png", str(pdf), str(pages / "page")],
                   check=True, capture_output=True)
    images = sorted(str(p) for p in pages.iterdir())
    # zbarimg exits 4 when some image holds no code (the instruction and text pages)
    scan = subprocess.run(["zbarimg", "--raw", "-q", *images], capture_output=True, text=True,
                          check=False)
    assert scan.returncode in (0, 4), scan.stderr
    parts = [line for line in scan.stdout.splitlines() if line]
    return Printed(workspace, data, pdf, keys / "identity", parts)


def _fresh_host(root: Path) -> tuple[Path, dict[str, str]]:
    """A new machine: an empty HOME and working directory, no drbackup config or state."""
    root.mkdir()
    (root / "home").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRBACKUP_")}
    env["HOME"] = str(root / "home")
    return root, env


def _drbackup(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "drbackup", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_printed_qr_codes_restore_on_a_fresh_host(printed: Printed, tmp_path: Path) -> None:
    parts = printed.parts
    count = len(parts)
    assert count >= 2, parts  # the kit is split, each code captioned and numbered
    assert sorted(p.split(":")[1] for p in parts) == sorted(f"{i}/{count}"
                                                            for i in range(1, count + 1))
    assert len({p.split(":")[2] for p in parts}) == 1  # one checksum of the whole
    # The PDF holds what the text document holds, and the armored kit to type in; no secret.
    text = subprocess.run(["pdftotext", "-layout", str(printed.pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    document = printed.pdf.with_suffix(".txt").read_text()
    fingerprint = next(line for line in document.splitlines() if line.startswith("Sealed to"))
    for expected in [fingerprint.split("  ", 1)[1], "Created 20", "agency planning: stores",
                     "agency roads: stores", "drbackup recovery-kit open --identity",
                     f"part 1 of {count}", f"part {count} of {count}",
                     *printed.pdf.with_suffix(".kit").read_text().splitlines()]:
        assert expected in text, expected
    secrets = [*printed.ws.passwords.values(), TEST_SECRET_KEY]
    assert not any(secret in text for secret in secrets)
    assert not any(secret.encode() in printed.pdf.read_bytes() for secret in secrets)

    host, env = _fresh_host(tmp_path / "new-host")
    shuffled = parts[:]
    random.Random(8).shuffle(shuffled)
    if shuffled == parts:
        shuffled.reverse()
    shuffled.append(shuffled[0])  # a code scanned twice: harmless
    (host / "scanned.txt").write_text("\n".join(shuffled) + "\n")
    shutil.copy(printed.identity, host / "identity")
    # The signer's fingerprint as printed on the PDF's first page, read from the PDF's text.
    signed_by = next(line for line in text.splitlines() if "Signed by host key" in line)
    fingerprint_text = signed_by.split("Signed by host key", 1)[1].strip()
    assert fingerprint_text.split() == printed_signer(printed.pdf.with_suffix(".txt")).split()
    opened = _drbackup(host, env, "recovery-kit", "open", "--identity", "identity",
                       "--kit", "scanned.txt", "--out", "recovery", "--signer-fingerprint",
                       fingerprint_text)
    assert opened.returncode == 0, opened.stderr
    env["DRBACKUP_CONFIG"] = str(host / "recovery" / "drbackup.toml")
    target = host / "restored"
    restored = _drbackup(host, env, "restore", "--agency", "planning", "--source", "documents",
                         "--target", str(target))
    assert restored.returncode == 0, restored.stderr
    assert manifest(target / printed.data.relative_to("/")) == manifest(printed.data)


def test_missing_or_altered_parts_fail_in_one_line_and_write_nothing(printed: Printed,
                                                                      tmp_path: Path) -> None:
    parts = printed.parts
    count = len(parts)
    by_index = {int(p.split(":")[1].split("/")[0]): p for p in parts}
    header, _, data = by_index[2].rpartition(":")
    swapped = "A" if data[10] != "A" else "B"
    altered = f"{header}:{data[:10]}{swapped}{data[11:]}"
    cases = {
        "missing": ([p for i, p in by_index.items() if i != 2], f"part 2 of {count} is missing"),
        "altered": ([altered if i == 2 else p for i, p in by_index.items()],
                    "do not match their checksum"),
        "conflicting": ([*parts, altered], f"part 2 of {count} was scanned twice with "
                                           "different content"),
    }
    host, env = _fresh_host(tmp_path / "new-host")
    shutil.copy(printed.identity, host / "identity")
    pdf_given = _drbackup(host, env, "recovery-kit", "open", "--identity", "identity",
                          "--kit", str(printed.pdf), "--out", "recovery")
    assert pdf_given.returncode == ExitCode.KIT_INVALID
    assert "is the PDF printout, not the kit" in pdf_given.stderr and "zbarimg" in pdf_given.stderr
    for name, (lines, message) in cases.items():
        (host / f"{name}.txt").write_text("\n".join(lines) + "\n")
        result = _drbackup(host, env, "recovery-kit", "open", "--identity", "identity",
                           "--kit", f"{name}.txt", "--out", "recovery")
        assert result.returncode == ExitCode.KIT_INVALID, (name, result.stderr)
        lines_out = result.stderr.strip().splitlines()
        assert len(lines_out) == 1 and message in lines_out[0], (name, result.stderr)
        assert lines_out[0].startswith("drbackup: error:")
        assert sorted(os.listdir(host)) == sorted(
            ["home", "identity", *(f"{n}.txt" for n in list(cases)[:list(cases).index(name) + 1])])
