#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian/Ubuntu machine: system packages (restic >= 0.17.1,
# the database servers and promtool the tests start), then the project's virtualenv.
# Usage: scripts/setup.sh [--system-only|--venv-only]
set -euo pipefail
cd "$(dirname "$0")/.."

MIN_RESTIC=0.17.1
want_system=1; want_venv=1
case "${1:-}" in
  --system-only) want_venv=0 ;;
  --venv-only) want_system=0 ;;
esac

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

restic_version() {
  command -v restic >/dev/null 2>&1 || { echo 0; return; }
  restic version 2>/dev/null | awk '{print $2}' || echo 0
}

apt_updated=0
apt_update_once() {
  if [ "$apt_updated" = 0 ]; then $SUDO apt-get update -qq; apt_updated=1; fi
}

apt_install_missing() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    apt_update_once
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

install_restic() {
  local have; have=$(restic_version)
  if version_ge "$have" "$MIN_RESTIC"; then echo "restic $have is new enough"; return; fi
  apt_update_once
  local candidate
  candidate=$(apt-cache policy restic 2>/dev/null | awk '/Candidate:/ {print $2}' | sed 's/^[0-9]*://; s/[-+].*//')
  if [ -n "$candidate" ] && [ "$candidate" != "(none)" ] && version_ge "$candidate" "$MIN_RESTIC"; then
    $SUDO apt-get install -y -qq restic
    return
  fi
  # The distro's restic is too old (Debian 12 ships 0.14): take Debian 13's package, a static
  # binary, through apt with a private sources list so the system's sources stay untouched.
  echo "distro restic ${candidate:-none} < $MIN_RESTIC: installing the Debian 13 (trixie) package"
  # Ubuntu lacks Debian's archive key; its debian-archive-keyring package provides it.
  apt_install_missing debian-archive-keyring
  local tmp; tmp=$(mktemp -d)
  chmod 755 "$tmp"
  mkdir -p "$tmp/lists/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" >"$tmp/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o Dir::Etc::SourceParts=/dev/null
              -o "Dir::State::Lists=$tmp/lists" -o APT::Get::List-Cleanup=0)
  $SUDO apt-get "${opts[@]}" update -qq
  (cd "$tmp" && apt-get "${opts[@]}" download restic)
  $SUDO dpkg -i "$tmp"/restic_*.deb
  rm -rf "$tmp"
  echo "installed restic $(restic_version)"
}

if [ "$want_system" = 1 ]; then
  # Runtime: restic, and rclone (restic reads a replica's source through it when the two stores
  # have different keys, #18). Tests: PostgreSQL and MariaDB servers (throwaway instances), promtool,
  # systemd-analyze, sqlite3, python venv support; pdftoppm + zbarimg read the kit PDF's QR codes.
  apt_install_missing ca-certificates python3-venv sqlite3 postgresql postgresql-client \
    mariadb-server mariadb-client prometheus systemd curl \
    poppler-utils zbar-tools rclone
  # make test-systemd: a Debian rootfs (debootstrap) booted with systemd-nspawn.
  apt_install_missing systemd-container debootstrap
  # Offline media tests (#19): vfat/exFAT images (exfat-fuse where the kernel lacks exFAT).
  apt_install_missing dosfstools exfatprogs exfat-fuse
  # The HTML city report (#20) is rendered in the distribution's headless Chromium; a CJK font
  # so the zh-CN screenshot is legible.
  apt_install_missing chromium-headless-shell fonts-wqy-microhei
  install_restic
fi

if [ "$want_venv" = 1 ]; then
  PY=${PYTHON:-python3}
  if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -c constraints.txt -e '.[dev]'
fi
echo "setup done"
