#!/bin/sh
# The kernel-build workload's tree: linux-source-7.3 unpacked at /opt/schedcp/src/linux,
# configured with `make tinyconfig` and `make prepare`d here, at native speed, so that a
# measured build in the guest compiles kernel objects only. Files an x86 tinyconfig build
# never reads are dropped (the other architectures, Documentation, tools/testing,
# tools/perf, the AMD GPU register headers), except the Kconfig files, which Kconfig
# parses for every architecture.
set -eu
ROOT="$1"
chroot "$ROOT" /bin/sh -eu <<'IN'
src=$(ls /usr/src/linux-source-7.3.tar.* | head -n1)
mkdir -p /opt/schedcp/src
tar -C /opt/schedcp/src -xf "$src"
mv /opt/schedcp/src/linux-source-7.3 /opt/schedcp/src/linux
cd /opt/schedcp/src/linux
for d in arch/*/ Documentation tools/testing tools/perf drivers/gpu/drm/amd/include; do
  case "$d" in arch/x86/) continue ;; esac
  find "$d" -type f ! -name 'Kconfig*' -delete
done
make -s ARCH=x86_64 tinyconfig
make -s ARCH=x86_64 -j"$(nproc)" prepare
du -sh /opt/schedcp/src/linux
IN
