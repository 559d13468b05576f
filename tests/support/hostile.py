"""A grammar of hostile drop-folder entries (#14 fuzz strand for drop folders).

An attacker who owns an agency's drop folder chooses every entry's name and kind. The names come
from `hostile_names` (newlines and other control characters, commas, `=`, `..`-like names,
leading dashes, quotes, very long names, non-ASCII); the kinds from `KINDS`: an honest regular
file, or links of every kind (absolute and relative symlinks to another agency's secret, to a
directory, dangling, a symlink to a symlink, a hard link to the secret), a fifo, character and
block device files, a socket, a directory, a huge sparse file, an empty file. `swap` replaces an
honest file, after it was selected and before it is read, with a link to the secret.

`build` creates the entries in a folder (every one marked `.done`) and returns what an honest
backup may contain: the names and bytes of the honest files.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

from tests.support.workspace import Workspace

KINDS = ("regular", "symlink-abs", "symlink-rel", "symlink-dir", "symlink-dangling",
         "symlink-chain", "hardlink", "fifo", "chardev", "blockdev", "socket", "directory",
         "sparse-huge", "empty")
NAME_MAX = 255 - len(".done")  # the marker must fit too

_pieces = st.sampled_from([
    "ledger", "dump", ".sql", "..", "...", "-", "--tag", "=", "file=x", ",", "agency=health",
    "\n", "\r", "\t", "\x1b[2J", "\x7f", " ", "'", '"', "`", "$(id)", ";", "*", "?", "[",
    "\\", "%s", "报表", "é", "\u202e", "source=..", "snapshot",
])
hostile_names: st.SearchStrategy[str] = st.one_of(
    st.lists(_pieces, min_size=1, max_size=6).map("".join),
    st.integers(min_value=200, max_value=NAME_MAX).map(lambda n: "L" * n),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="/\0"),
            min_size=1, max_size=30),
).filter(lambda n: n not in (".", "..") and not n.startswith(".") and "/" not in n
         and "\0" not in n and len(n.encode()) <= NAME_MAX and not n.endswith(".done"))


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str


entries: st.SearchStrategy[list[Entry]] = st.lists(
    st.builds(Entry, hostile_names, st.sampled_from(KINDS)),
    min_size=1, max_size=8, unique_by=lambda e: e.name)


def honest_bytes(name: str) -> bytes:
    return b"honest dump " + name.encode() + b"\n" * 20


def build(folder: Path, items: list[Entry], secret: Path) -> dict[str, bytes]:
    """Create the entries (each marked), return {name: bytes} of the honest regular files."""
    honest: dict[str, bytes] = {}
    for item in items:
        path = folder / item.name
        kind = item.kind
        if kind == "regular":
            honest[item.name] = honest_bytes(item.name)
            path.write_bytes(honest[item.name])
        elif kind == "empty":
            path.write_bytes(b"")
            honest[item.name] = b""
        elif kind == "symlink-abs":
            path.symlink_to(secret)
        elif kind == "symlink-rel":
            path.symlink_to(os.path.relpath(secret, folder))
        elif kind == "symlink-dir":
            path.symlink_to(secret.parent, target_is_directory=True)
        elif kind == "symlink-dangling":
            path.symlink_to(folder / "does-not-exist")
        elif kind == "symlink-chain":
            middle = folder.parent / f"chain-{abs(hash(item.name))}"
            if not middle.is_symlink():
                middle.symlink_to(secret)
            path.symlink_to(middle)
        elif kind == "hardlink":
            os.link(secret, path)
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "chardev":
            os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # like /dev/null
        elif kind == "blockdev":
            os.mknod(path, 0o600 | stat.S_IFBLK, os.makedev(7, 0))  # like /dev/loop0
        elif kind == "socket":
            server = socket.socket(socket.AF_UNIX)
            try:
                server.bind(str(path))
            except OSError:  # a name too long for sun_path: make it a fifo instead
                os.mkfifo(path)
            finally:
                server.close()
        elif kind == "directory":
            path.mkdir()
            (path / "inside.dump").write_bytes(secret.read_bytes())
        elif kind == "sparse-huge":
            with path.open("wb") as handle:
                handle.truncate(64 << 30)  # 64 GiB apparent, nothing allocated
        else:  # pragma: no cover - KINDS is the list above
            raise AssertionError(kind)
        (folder / (item.name + ".done")).write_bytes(b"")
    return honest


def swap_for_link(path: Path, secret: Path) -> None:
    """Replace a selected file with a symlink to the secret (the race an attacker runs)."""
    path.unlink()
    path.symlink_to(secret)


def repository_bytes(workspace: Workspace, agency: str, restic_binary: str) -> bytes:
    """Every snapshot of the agency's local repository, dumped as tar: all it would restore."""
    password_file = Path(workspace.agency(agency)["password_file"])
    repo = workspace.state_dir / "repos" / agency
    env = {**os.environ, "RESTIC_REPOSITORY": str(repo), "RESTIC_PASSWORD_FILE": str(password_file),
           "RESTIC_CACHE_DIR": str(workspace.root / "cache")}
    listed = subprocess.run([restic_binary, "snapshots", "--json"], env=env, check=True,
                            capture_output=True)
    found = b""
    for snapshot in json.loads(listed.stdout or b"[]"):
        found += subprocess.run([restic_binary, "dump", "--archive", "tar", snapshot["id"], "/"],
                                env=env, check=True, capture_output=True).stdout
    return found
