#!/usr/bin/env bash
# The GPU check, run natively on a GPU host (no VM, no network): NVML, then each GPU
# workload's own program several times, each metric with its CV and the GPU energy per
# run, into one report file. Needs Python 3 with nvidia-ml-py (pynvml); PyTorch, a GPU
# FAISS, a CUDA llama-cpp-python and vLLM are used where installed. Without a usable
# NVIDIA GPU it says so and exits 2, writing nothing.
#   scripts/gpu-check.sh [--runs 6] [--sizes smoke,full] [--workloads pytorch,...] [--out FILE]
# PYTHON=/path/to/python3 picks the interpreter (default: python3 on PATH).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PYTHON:-python3}"
if ! command -v "$py" >/dev/null 2>&1; then
    echo "gpu-check: $py not found (set PYTHON=/path/to/python3)" >&2
    exit 2
fi
if ! "$py" -c 'import pynvml' >/dev/null 2>&1; then
    echo "gpu-check: $py has no pynvml module (pip install nvidia-ml-py); nothing was run, no report written" >&2
    exit 2
fi
exec "$py" "$here/gpu_check.py" "$@"
