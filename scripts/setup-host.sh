#!/usr/bin/env bash
# `make setup`: everything schedcp-bench needs on a fresh Debian 12 host, idempotent.
# apt packages (QEMU 10 and libvirt 11 from bookworm-backports, mmdebstrap...), libvirt's
# daemons started by hand (no systemd here), /dev/kvm permissions, and the .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "setup: $*"; }
[ "$(id -u)" = 0 ] || { echo "setup: needs root (apt-get, libvirtd, mmdebstrap --mode=root)" >&2; exit 1; }

. /etc/os-release
PKGS=(pkg-config gcc mmdebstrap e2fsprogs openssh-client
      debian-archive-keyring procps tmux python3-venv python3-dev)
# From bookworm-backports on Debian 12: stock bookworm QEMU 7.2 intermittently panics TCG
# guests at boot (QEMU 10 does not), and libvirt >= 11.2 saves VM states in QEMU's
# mapped-ram ("sparse") format, which restores faster than bookworm's libvirt 9.0 can.
VIRT_PKGS=(qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-dev)
missing=()
for p in "${PKGS[@]}" "${VIRT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
qemu_major=$(qemu-system-x86_64 --version 2>/dev/null | sed -n 's/.*version \([0-9]*\).*/\1/p' || true)
libvirt_ver=$(dpkg-query -W -f='${Version}' libvirt-daemon 2>/dev/null || true)
if [ "${VERSION_CODENAME:-}" = bookworm ]; then
  [ "${qemu_major:-0}" -ge 10 ] || missing+=(qemu-system-x86)
  dpkg --compare-versions "${libvirt_ver:-0}" ge 11.2 || missing+=(libvirt-daemon-system libvirt-dev)
fi
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  if [ "${VERSION_CODENAME:-}" = bookworm ] && ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    cat > /etc/apt/sources.list.d/bookworm-backports.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # --force-confold: an upgrade keeps the qemu.conf edited below (no prompt).
  APT=(apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  if [ "${VERSION_CODENAME:-}" = bookworm ]; then
    pgrep -x libvirtd >/dev/null && pkill -x libvirtd && sleep 1  # restarted below, new version
    pgrep -x virtlogd >/dev/null && pkill -x virtlogd && sleep 0.5
    "${APT[@]}" -t bookworm-backports "${VIRT_PKGS[@]}"
  else
    "${APT[@]}" "${VIRT_PKGS[@]}"
  fi
  "${APT[@]}" "${PKGS[@]}"
fi

# /dev/kvm as root:root 0600 makes libvirt re-probe capabilities on every call (slow).
if [ -e /dev/kvm ] && getent group kvm >/dev/null; then
  chgrp kvm /dev/kvm && chmod 660 /dev/kvm || true
fi

# libvirt's private /dev mount namespace per domain adds ~0.5 s to every VM start and
# restore; our domains use no host devices that need it (GPU passthrough works without).
restart_libvirtd=0
if grep -q '^#namespaces = \[ "mount" \]' /etc/libvirt/qemu.conf 2>/dev/null; then
  sed -i 's/^#namespaces = \[ "mount" \]/namespaces = []/' /etc/libvirt/qemu.conf
  restart_libvirtd=1
fi

# No systemd: start the daemons by hand when they are not running.
if [ "$restart_libvirtd" = 1 ] && pgrep -x libvirtd >/dev/null; then
  log "restarting libvirtd (qemu.conf changed)"; pkill -x libvirtd; sleep 1
fi
pgrep -x virtlogd >/dev/null || { log "starting virtlogd"; virtlogd -d; }
pgrep -x libvirtd >/dev/null || { log "starting libvirtd"; libvirtd -d; }
for _ in $(seq 50); do [ -S /var/run/libvirt/libvirt-sock ] && break; sleep 0.2; done
[ -S /var/run/libvirt/libvirt-sock ] || { echo "setup: libvirtd did not come up (see /var/log/libvirt/)" >&2; exit 1; }

# The project's virtualenv; reinstalled when pyproject.toml changes.
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || { log "creating .venv"; "$PY" -m venv .venv; }
if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
  log "installing schedcp-bench into .venv"
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e '.[test]'
  touch .venv/.installed
fi
# libvirt-python is compiled against the installed libvirt's API: rebuild it when libvirt
# changed (a binding older than libvirt 11.2 cannot ask for sparse saved states).
lv_api=$(pkg-config --modversion libvirt)
if [ "$(cat .venv/.libvirt-api 2>/dev/null)" != "$lv_api" ]; then
  log "building libvirt-python against libvirt $lv_api"
  .venv/bin/pip install -q --force-reinstall --no-deps --no-cache-dir --no-binary libvirt-python libvirt-python
  echo "$lv_api" > .venv/.libvirt-api
fi
mkdir -p "${SCHEDCP_HOME:-/var/lib/schedcp}" && chmod 755 "${SCHEDCP_HOME:-/var/lib/schedcp}"
log "ok ($(qemu-system-x86_64 --version | head -n1); libvirt $(libvirtd --version | awk '{print $NF}'))"
