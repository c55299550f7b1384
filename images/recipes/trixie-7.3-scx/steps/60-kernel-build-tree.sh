#!/bin/sh
# The kernel-build workload's tree: linux-source-7.3 unpacked at /opt/schedcp/src/linux,
# configured with `make tinyconfig` and `make prepare`d here, at native speed, so that a
# measured build in the guest compiles kernel objects only. Left out (never read by an
# x86 tinyconfig build): Documentation's subfolders, the other architectures, the AMD
# GPU register headers, tools/testing and tools/perf.
set -eu
ROOT="$1"
chroot "$ROOT" /bin/sh -eu <<'IN'
src=$(ls /usr/src/linux-source-7.3.tar.* | head -n1)
mkdir -p /opt/schedcp/src
tar -C /opt/schedcp/src -xf "$src" \
  --exclude='linux-source-7.3/Documentation/[a-z]*' \
  --exclude='linux-source-7.3/arch/[a-w]*' \
  --exclude='linux-source-7.3/drivers/gpu/drm/amd/include' \
  --exclude='linux-source-7.3/tools/testing' \
  --exclude='linux-source-7.3/tools/perf'
mv /opt/schedcp/src/linux-source-7.3 /opt/schedcp/src/linux
cd /opt/schedcp/src/linux
make -s ARCH=x86_64 tinyconfig
make -s ARCH=x86_64 -j"$(nproc)" prepare
du -sh /opt/schedcp/src/linux
IN
