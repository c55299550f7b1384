#!/bin/bash
# Usage: build.sh smoke|full. Builds in the prepared Linux 7.3 tree at
# /opt/schedcp/src/linux (linux-source-7.3, `make tinyconfig` + `make prepare` done when
# the image was built), with one make job per CPU. Every run does the same work:
#   smoke: removes, then recompiles, a fixed set of scheduler/process-management objects;
#   full:  `make clean`, then the whole tinyconfig kernel (vmlinux + bzImage).
set -euo pipefail
cd /opt/schedcp/src/linux
jobs=$(nproc)
SMOKE_OBJS="kernel/fork.o kernel/exit.o kernel/signal.o kernel/sys.o"
case "${1:?smoke|full}" in
  smoke) rm -f $SMOKE_OBJS; make -s ARCH=x86_64 -j"$jobs" $SMOKE_OBJS ;;
  full)  make -s ARCH=x86_64 clean; make -s ARCH=x86_64 -j"$jobs" bzImage ;;
  *) echo "usage: $0 smoke|full" >&2; exit 2 ;;
esac
echo "built with make -j$jobs ($1)"
