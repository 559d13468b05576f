#!/usr/bin/env bash
# Build (or reuse) the Debian 12 root filesystem `make test-systemd` boots with
# `systemd-nspawn --boot`, and install this checkout's drbackup into it the README's way
# (a venv + /usr/local/bin/drbackup, systemd/ unit, sysusers, tmpfiles, sysctl drop-in).
#
# Layers, each marked done by a file under $ROOTFS/.drbackup-test/ so a rerun redoes only what
# changed: base (debootstrap: systemd, dbus, python3, sqlite3), db (PostgreSQL, MariaDB servers
# and clients, not started), restic (the host's binary: bookworm ships 0.14, drbackup needs
# >= 0.17.1), deps (drbackup's dependencies from PyPI, pinned by constraints.txt, keyed by its
# hash), app (this checkout's drbackup and systemd/ files: always redone, it takes seconds).
#
# Usage: scripts/systemd-rootfs.sh [ROOTFS]   (default $DRBACKUP_ROOTFS or
#        /var/cache/drbackup-test/rootfs). Needs root, debootstrap, and the Debian archive.
set -euo pipefail
cd "$(dirname "$0")/.."

ROOTFS=${1:-${DRBACKUP_ROOTFS:-/var/cache/drbackup-test/rootfs}}
MIRROR=${DRBACKUP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
MIN_RESTIC=0.17.1
MARK="$ROOTFS/.drbackup-test"
# A Python with pip on the host (the project venv), for fetching wheels.
HOST_PY=${HOST_PY:-.venv/bin/python}

if [ "$(id -u)" -ne 0 ]; then echo "systemd-rootfs.sh: needs root (debootstrap, chroot)" >&2; exit 2; fi
command -v debootstrap >/dev/null || { echo "systemd-rootfs.sh: debootstrap missing (make setup)" >&2; exit 2; }

version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

in_root() { chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 HOME=/root "$@"; }

# --- base -------------------------------------------------------------------------------------
if [ ! -e "$MARK/base" ]; then
  echo "== debootstrap $SUITE into $ROOTFS (minbase + systemd)"
  rm -rf "$ROOTFS.partial"
  mkdir -p "$(dirname "$ROOTFS")"
  debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,libpam-systemd,python3,python3-venv,sqlite3,ca-certificates,procps,util-linux,curl \
    "$SUITE" "$ROOTFS.partial" "$MIRROR"
  rm -rf "$ROOTFS"
  mv "$ROOTFS.partial" "$ROOTFS"
  mkdir -p "$MARK"
  # The container is booted read-write from the cache; keep its first boot quiet and quick.
  echo drbackup-test >"$ROOTFS/etc/hostname"
  : >"$ROOTFS/etc/machine-id"
  # No root password, no getty: tests drive it through `systemd-run -M` / nsenter.
  ln -sf /dev/null "$ROOTFS/etc/systemd/system/console-getty.service"
  ln -sf /dev/null "$ROOTFS/etc/systemd/system/systemd-networkd-wait-online.service"
  touch "$MARK/base"
fi

# --- db: servers the dump and DB-drill jobs talk to (installed, never enabled) -----------------
if [ ! -e "$MARK/db" ]; then
  echo "== PostgreSQL and MariaDB into the rootfs"
  cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"; chmod 755 "$ROOTFS/usr/sbin/policy-rc.d"
  mount --bind /proc "$ROOTFS/proc"; trap 'umount "$ROOTFS/proc" 2>/dev/null || true' EXIT
  in_root apt-get update -qq
  in_root apt-get install -y -qq --no-install-recommends postgresql postgresql-client \
    mariadb-server mariadb-client >/dev/null
  in_root apt-get clean
  rm -f "$ROOTFS/usr/sbin/policy-rc.d"
  umount "$ROOTFS/proc"; trap - EXIT
  # Started by the tests on demand, not at boot.
  in_root systemctl disable postgresql.service mariadb.service >/dev/null 2>&1 || true
  touch "$MARK/db"
fi

# --- restic ------------------------------------------------------------------------------------
host_restic=$(command -v restic || true)
[ -n "$host_restic" ] || { echo "systemd-rootfs.sh: no restic on the host (make setup)" >&2; exit 2; }
have=$(restic version | awk '{print $2}')
version_ge "$have" "$MIN_RESTIC" || { echo "host restic $have < $MIN_RESTIC" >&2; exit 2; }
if ! cmp -s "$host_restic" "$ROOTFS/usr/bin/restic"; then
  echo "== restic $have (host binary; bookworm's package is 0.14)"
  install -m 0755 "$host_restic" "$ROOTFS/usr/bin/restic"
fi

# --- deps: drbackup's runtime dependencies in /opt/drbackup ------------------------------------
deps_key=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ "$(cat "$MARK/deps" 2>/dev/null)" != "$deps_key" ]; then
  echo "== venv /opt/drbackup with drbackup's dependencies (constraints.txt)"
  cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
  rm -rf "$ROOTFS/opt/drbackup"
  in_root python3 -m venv /opt/drbackup
  # Wheels are fetched on the host (its pip has the host's index and CA settings) and installed
  # offline: the rootfs needs no network. Same Python (3.11) and glibc (2.36) on both sides.
  wheels="$(dirname "$ROOTFS")/wheels-$deps_key"
  if [ ! -e "$wheels/.complete" ]; then
    rm -rf "$wheels"; mkdir -p "$wheels"
    python3 - "$wheels/requirements.txt" <<'EOF2'
import sys, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
open(sys.argv[1], "w").write("\n".join(deps + ["setuptools>=68", "wheel"]) + "\n")
EOF2
    "$HOST_PY" -m pip download -q --only-binary=:all: --python-version 3.11 \
      --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_34_x86_64 \
      --platform manylinux_2_17_x86_64 --platform linux_x86_64 --platform any \
      -d "$wheels" -c constraints.txt -r "$wheels/requirements.txt"
    touch "$wheels/.complete"
  fi
  mkdir -p "$ROOTFS/tmp/wheels"
  cp "$wheels"/*.whl "$wheels/requirements.txt" "$ROOTFS/tmp/wheels/"
  in_root /opt/drbackup/bin/pip install -q --disable-pip-version-check --no-index \
    --find-links /tmp/wheels -r /tmp/wheels/requirements.txt
  rm -rf "$ROOTFS/tmp/wheels"
  echo "$deps_key" >"$MARK/deps"
fi

# --- app: this checkout, installed as ops would ------------------------------------------------
echo "== drbackup from $(pwd) into /opt/drbackup, systemd/ files as in README"
rm -rf "$ROOTFS/tmp/drbackup-src"
mkdir -p "$ROOTFS/tmp/drbackup-src"
git ls-files -z drbackup pyproject.toml README.md constraints.txt | \
  xargs -0 cp --parents -t "$ROOTFS/tmp/drbackup-src"
in_root /opt/drbackup/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation \
  --force-reinstall /tmp/drbackup-src
rm -rf "$ROOTFS/tmp/drbackup-src"
ln -sf /opt/drbackup/bin/drbackup "$ROOTFS/usr/local/bin/drbackup"
# README "Install as a systemd service" (the commands that need a running systemd,
# systemd-sysusers / tmpfiles / sysctl / enable, are run and checked by the test after boot).
install -m 0644 systemd/drbackup.service "$ROOTFS/etc/systemd/system/"
install -D -m 0644 systemd/drbackup.sysusers "$ROOTFS/usr/lib/sysusers.d/drbackup.conf"
install -D -m 0644 systemd/drbackup.tmpfiles "$ROOTFS/usr/lib/tmpfiles.d/drbackup.conf"
install -D -m 0644 systemd/99-drbackup-inotify.conf "$ROOTFS/etc/sysctl.d/99-drbackup-inotify.conf"
# The test boots with a writable /proc/sys so that the drop-in is applied at boot as on a host;
# fs.inotify.* is not namespaced, so only our drop-in may apply (the test puts the host's values
# back afterwards): every other sysctl.d file of the rootfs is masked.
for f in "$ROOTFS"/usr/lib/sysctl.d/*.conf; do
  [ -e "$f" ] && ln -sf /dev/null "$ROOTFS/etc/sysctl.d/$(basename "$f")"
done
git rev-parse HEAD >"$MARK/app"
echo "rootfs ready: $ROOTFS ($(du -sh "$ROOTFS" | cut -f1))"
