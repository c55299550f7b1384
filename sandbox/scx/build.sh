#!/bin/sh
# Build one sched_ext scheduler in the guest, the way the kernel's tools/sched_ext
# Makefile builds its examples: BPF object with clang-22 against the image's vmlinux.h,
# linked and turned into a skeleton with bpftool, then the C loader (loader.c, generated
# by the harness) against the libbpf built at image build time.
# usage: build.sh DIR NAME    (DIR holds NAME.bpf.c and NAME.c; result: DIR/NAME)
# Each stage prints "STAGE <name>" first, so a failure says which stage failed.
set -eu
D=$1; N=$2
SRC=/opt/schedcp/scx/src; B=/opt/schedcp/scx/build/build
cd "$D"
SYS=$(clang-22 -v -E - </dev/null 2>&1 | sed -n '/<...> search starts here:/,/End of search list./{ s| \(/.*\)|-idirafter \1|p }')
echo "STAGE compile"
# shellcheck disable=SC2086
clang-22 -g -D__TARGET_ARCH_x86 -mlittle-endian -I"$SRC/include" -I"$SRC/include/bpf-compat" \
  -I"$B/include" $SYS -Wall -Wno-compare-distinct-pointer-types -Wno-microsoft-anon-tag \
  -fms-extensions -O2 -mcpu=v3 -target bpf -c "$N.bpf.c" -o "$N.bpf.o"
echo "STAGE link"
bpftool gen object "$N.bpf.l1.o" "$N.bpf.o"
bpftool gen object "$N.bpf.l2.o" "$N.bpf.l1.o"
bpftool gen skeleton "$N.bpf.l2.o" name "$N" > "$N.bpf.skel.h"
echo "STAGE loader"
cc -g -O2 -pthread -I"$B/include" -I"$SRC/include" -I. -c "$N.c" -o "$N.o"
cc -o "$N" "$N.o" "$B/obj/libbpf/libbpf.a" -lelf -lz -lpthread
echo "STAGE built"
