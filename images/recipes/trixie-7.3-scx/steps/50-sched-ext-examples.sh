#!/bin/sh
# Build the kernel's own tools/sched_ext example schedulers in the image, against
# the 7.3.4 kernel's vmlinux.h (never the build host's BTF), with clang-22.
# Result: /opt/schedcp/scx/bin/scx_* and the sources + headers an agent needs to
# compile its own scheduler at /opt/schedcp/scx/src.
set -eu
ROOT="$1"
chroot "$ROOT" /bin/sh -eu <<'IN'
src=$(ls /usr/src/linux-source-7.3.tar.* | head -n1)
mkdir -p /opt/schedcp/scx/build /tmp/ksrc
tar -C /tmp/ksrc -xf "$src" --wildcards 'linux-source-7.3/tools/*' 'linux-source-7.3/scripts/*' 'linux-source-7.3/include/*' 'linux-source-7.3/arch/x86/include/*' 'linux-source-7.3/Makefile'
cd /tmp/ksrc/linux-source-7.3
make -s -C tools/sched_ext -j"$(nproc)" CLANG=clang-22 BPFTOOL=/usr/sbin/bpftool \
  VMLINUX_H=/usr/include/x86_64-linux-gnu/linux/bpf/vmlinux.h O=/opt/schedcp/scx/build
mkdir -p /opt/schedcp/scx/bin
cp /opt/schedcp/scx/build/bin/scx_* /opt/schedcp/scx/bin/ 2>/dev/null || find /opt/schedcp/scx/build -maxdepth 3 -type f -perm -u+x -name 'scx_*' -exec cp {} /opt/schedcp/scx/bin/ \;
ls /opt/schedcp/scx/bin
mkdir -p /opt/schedcp/scx/src
cp -a tools/sched_ext/. /opt/schedcp/scx/src/
cd / && rm -rf /tmp/ksrc
IN
