#!/bin/bash
# Usage: build.sh smoke|full. Builds LLVM 19.1.7 (Debian's llvm-toolchain-19 source)
# in /opt/schedcp/src/llvm/build, configured with CMake for Ninja (Release, X86 only)
# when the image was built, with one ninja job per CPU. Every run does the same work:
#   smoke: removes, then recompiles, a fixed set of LLVMSupport objects;
#   full:  `ninja -t clean`, then llvm-tblgen with everything it links (LLVMSupport,
#          LLVMDemangle, LLVMTableGen: a few hundred C++ files).
set -euo pipefail
cd /opt/schedcp/src/llvm/build
jobs=$(nproc)
S=lib/Support/CMakeFiles/LLVMSupport.dir
SMOKE_OBJS="$S/APInt.cpp.o $S/StringRef.cpp.o $S/raw_ostream.cpp.o $S/SmallVector.cpp.o"
case "${1:?smoke|full}" in
  smoke) rm -f $SMOKE_OBJS; ninja -j"$jobs" $SMOKE_OBJS ;;
  full)  ninja -t clean >/dev/null; ninja -j"$jobs" llvm-tblgen ;;
  *) echo "usage: $0 smoke|full" >&2; exit 2 ;;
esac
echo "built with ninja -j$jobs ($1)"
