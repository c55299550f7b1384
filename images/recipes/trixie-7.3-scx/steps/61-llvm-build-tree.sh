#!/bin/sh
# The llvm-build workload's tree: the LLVM 19.1.7 sources of Debian's llvm-toolchain-19
# (the .orig tarball, pinned by sha256; only llvm/, cmake/ and third-party/, without
# tests and docs) at /opt/schedcp/src/llvm, configured here with CMake + Ninja (Release,
# X86 target only) into build/. Nothing is compiled here: the guest's runs compile.
set -eu
ROOT="$1"
URL=http://deb.debian.org/debian/pool/main/l/llvm-toolchain-19/llvm-toolchain-19_19.1.7.orig.tar.xz
SHA256=ae498f3bc58ae2d9f64ef5f0c035c4240152bf015a5b7738b15c22e93bdc97ce
TOP=llvm-toolchain-19_19.1.7
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
curl -fsSL --retry 3 -o "$tmp/llvm.tar.xz" "$URL"
echo "$SHA256  $tmp/llvm.tar.xz" | sha256sum -c -
mkdir -p "$ROOT/opt/schedcp/src/llvm"
tar -C "$ROOT/opt/schedcp/src/llvm" --strip-components=1 -xJf "$tmp/llvm.tar.xz" \
  --exclude="$TOP/llvm/test" --exclude="$TOP/llvm/unittests" --exclude="$TOP/llvm/docs" \
  "$TOP/llvm" "$TOP/cmake" "$TOP/third-party"
chroot "$ROOT" /bin/sh -eu <<'IN'
cd /opt/schedcp/src/llvm
cmake -G Ninja -S llvm -B build -DCMAKE_BUILD_TYPE=Release -DLLVM_TARGETS_TO_BUILD=X86 \
  -DLLVM_INCLUDE_TESTS=OFF -DLLVM_INCLUDE_BENCHMARKS=OFF -DLLVM_INCLUDE_EXAMPLES=OFF \
  -DLLVM_INCLUDE_DOCS=OFF -DLLVM_ENABLE_BINDINGS=OFF -DLLVM_ENABLE_ZLIB=OFF -DLLVM_ENABLE_ZSTD=OFF \
  -DLLVM_ENABLE_LIBXML2=OFF -DLLVM_ENABLE_LIBEDIT=OFF -DLLVM_ENABLE_LIBPFM=OFF -DLLVM_ENABLE_TERMINFO=OFF \
  > /tmp/llvm-cmake.log 2>&1 || { tail -40 /tmp/llvm-cmake.log; exit 1; }
tail -3 /tmp/llvm-cmake.log
du -sh /opt/schedcp/src/llvm
IN
