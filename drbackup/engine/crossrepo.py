"""How one restic process opens two repositories that different credentials guard (copy, init
--copy-chunker-params): the destination through restic's rclone backend with an rclone config
held in memory, the source through restic's own S3 backend.

Why this way (read in restic 0.18's source): restic's S3 backend takes its keys from the process
environment (AWS_*, or AWS_SHARED_CREDENTIALS_FILE/AWS_PROFILE) for the source as for the
destination, and its `-o s3.*` options name no key; `copy` fills the source's options from the
same global ones. Its rclone backend instead runs `rclone serve restic --stdio <remote:path>`,
and an rclone remote carries its own `access_key_id`, `secret_access_key`, `endpoint` and
`region`. So the destination becomes `rclone:drbackup-destination:<bucket>/<prefix>` with
`env_auth = false` (rclone never looks at the source's AWS_* it inherits), and its config lives
in a memfd (`RCLONE_CONFIG=/dev/fd/N`): no file on disk, nothing in argv or in the environment,
and nothing left behind when the processes die, however they die.

Why the destination and not the source: a copy reads blobs from the source's packs in many
ranged requests and writes whole packs to the destination; relaying the writes through rclone
cost 0.96-1.06x a same-key copy, relaying the reads 1.15-1.3x (bench/replication.py, 2-core
host with both S3 servers on it, BENCHMARKS.md).

When no two different S3 keys meet, nothing changes: a local source needs no key, an S3 source
copied to a local destination uses its own keys as the process environment, and two S3 stores
with the same key share it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from drbackup.engine.environment import from_env
from drbackup.engine.errors import ResticError
from drbackup.engine.models import RepoTarget

REMOTE = "drbackup-destination"
# Requests through `rclone serve restic` wait on one more process and pipe each. 10 (restic's
# default is 5) was chosen when the relay carried the source's reads (~15 % -> ~10 %); with
# the replica's writes behind it the copy runs at 0.95-1.07x a same-key one (bench/replication.py).
RCLONE_CONNECTIONS = 10
_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION")


@dataclass(frozen=True)
class CopyAccess:
    """What the restic process needs to open both sides: environment additions (the source's
    RESTIC_FROM_*, and when the destination goes through rclone its rclone: URL and the
    source's keys), the file descriptors it must inherit, and CA files for restic's own TLS
    (--cacert)."""

    env: dict[str, str] = field(repr=False)
    pass_fds: tuple[int, ...] = ()
    cacerts: tuple[Path, ...] = ()
    through_rclone: bool = False
    options: tuple[str, ...] = ()  # restic global options (no secret: they reach argv)


def _s3(target: RepoTarget) -> dict[str, str]:
    env = dict(target.backend_env)
    return {k: env[k] for k in _KEYS if k in env}


def rclone_remote(target: RepoTarget, name: str = REMOTE) -> tuple[str, str]:
    """(rclone.conf text, the `remote:bucket/prefix` path) for an S3 repository. The text holds
    the secret key: it goes to a memfd only."""
    raw = target.url.removeprefix("s3:")
    parts = urlsplit(raw)
    env = _s3(target)
    lines = [f"[{name}]", "type = s3", "provider = Other", "env_auth = false",
             f"access_key_id = {env['AWS_ACCESS_KEY_ID']}",
             f"secret_access_key = {env['AWS_SECRET_ACCESS_KEY']}",
             f"endpoint = {parts.scheme}://{parts.netloc}",
             f"region = {env.get('AWS_DEFAULT_REGION', 'us-east-1')}",
             "force_path_style = true", "no_check_bucket = true"]
    if env.get("AWS_SESSION_TOKEN"):
        lines.append(f"session_token = {env['AWS_SESSION_TOKEN']}")
    for line in lines:
        if "\n" in line or "\r" in line:
            raise ResticError(f"the credentials of {target.display} hold a line break",
                              "fix the store's credentials_file")
    return "\n".join(lines) + "\n", f"{name}:{parts.path.strip('/')}"


def needs_rclone(source: RepoTarget, destination: RepoTarget) -> bool:
    """Both sides on S3 with different keys or regions: restic cannot give each its own."""
    src, dst = _s3(source), _s3(destination)
    return bool(src) and bool(dst) and src != dst


@contextmanager
def copy_access(source: RepoTarget, destination: RepoTarget) -> Iterator[CopyAccess]:
    """The access for the one process that opens both repositories; the memfd (when one is
    needed) is closed when the block ends."""
    base = from_env(source)
    if not needs_rclone(source, destination):
        src = dict(source.backend_env)
        env = {**base, **src} if src and not _s3(destination) else base
        yield CopyAccess(env, (), (source.ca_file,) if source.ca_file else ())
        return
    text, path = rclone_remote(destination)
    src, dst = _s3(source), _s3(destination)
    fd = os.memfd_create("drbackup-rclone.conf", os.MFD_CLOEXEC)
    try:
        os.write(fd, text.encode("utf-8"))
        # restic's S3 backend now serves the source only: its keys replace the destination's
        # in restic's environment (an emptied variable is unset for restic's S3 client).
        keys = {k: src.get(k, "") for k in _KEYS if k in src or k in dst}
        env = {**base, **keys, "RESTIC_REPOSITORY": f"rclone:{path}",
               "RCLONE_CONFIG": f"/dev/fd/{fd}"}
        if destination.ca_file is not None:
            env["RCLONE_CA_CERT"] = str(destination.ca_file)
        yield CopyAccess(env, (fd,), (source.ca_file,) if source.ca_file else (),
                           through_rclone=True,
                           options=("-o", f"rclone.connections={RCLONE_CONNECTIONS}"))
    finally:
        os.close(fd)
