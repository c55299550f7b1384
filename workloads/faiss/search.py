#!/usr/bin/python3
"""FAISS similarity search: build an index over seeded random vectors, then search it.

Usage: search.py N_BASE N_QUERIES [DIM]. Exact L2 search (IndexFlatL2, k=10) plus an
IVF index (IndexIVFFlat, nlist = sqrt(N), k-means trained on 30 points per list drawn
from the base, nprobe 16).
Uses the GPU when this FAISS build has GPU support and the sandbox has a GPU, else all
CPUs (OpenMP). Everything is timed inside the process. Prints flat_qps=, ivf_qps=,
ivf_build_s=.
"""

import os
import sys
import time

import faiss
import numpy as np

nb, nq = int(sys.argv[1]), int(sys.argv[2])
d = int(sys.argv[3]) if len(sys.argv) > 3 else 64
rng = np.random.default_rng(42)
xb = rng.random((nb, d), dtype=np.float32)
xq = rng.random((nq, d), dtype=np.float32)
faiss.omp_set_num_threads(os.cpu_count() or 1)
gpu = hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
res = faiss.StandardGpuResources() if gpu else None


def on_device(index):
    return faiss.index_cpu_to_gpu(res, 0, index) if gpu else index


flat = on_device(faiss.IndexFlatL2(d))
flat.add(xb)
t0 = time.perf_counter()
D, I = flat.search(xq, 10)
flat_s = time.perf_counter() - t0

nlist = max(16, int(nb ** 0.5))
t1 = time.perf_counter()
ivf = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist)
ivf.cp.seed = 1234
ivf = on_device(ivf)
ivf.train(xb[:: max(1, nb // (30 * nlist))][: 30 * nlist])
ivf.add(xb)
build_s = time.perf_counter() - t1
ivf.nprobe = 16
t2 = time.perf_counter()
D2, I2 = ivf.search(xq, 10)
ivf_s = time.perf_counter() - t2
recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, I2)]))
print(f"device={'gpu' if gpu else 'cpu'} threads={faiss.omp_get_max_threads()} faiss={faiss.__version__}")
print(f"flat_search_s={flat_s:.4f}")
print(f"flat_qps={nq / flat_s:.2f}")
print(f"ivf_build_s={build_s:.4f}")
print(f"ivf_qps={nq / ivf_s:.2f}")
print(f"ivf_recall_at_10={recall:.3f}")
