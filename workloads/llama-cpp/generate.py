#!/opt/schedcp/py/bin/python
"""llama.cpp inference (llama-cpp-python) with Gemma 3 270M (Q4_K_M GGUF).

Usage: generate.py N_PROMPT_REPEATS N_GENERATE. Loads the model (not timed), then
evaluates a fixed prompt and generates N_GENERATE tokens greedily (temperature 0, fixed
seed), one thread per CPU, all layers on the GPU when llama.cpp was built with GPU
support and the sandbox has one. Prompt processing and generation are timed separately
inside the process. Prints prompt_tokens_per_s= and gen_tokens_per_s=.
"""

import os
import sys
import time

# The image's llama-cpp-python has no llama.cpp of its own: it loads the prebuilt
# libraries of /opt/schedcp/llama-lib (see the image recipe's step 63-llama-cpp.sh).
if os.path.isdir("/opt/schedcp/llama-lib"):
    os.environ.setdefault("LLAMA_CPP_LIB_PATH", "/opt/schedcp/llama-lib")

import llama_cpp  # noqa: E402

MODEL = os.environ.get("LLAMA_MODEL", "/opt/schedcp/models/gemma-3-270m-q4_k_m.gguf")
repeats, n_gen = int(sys.argv[1]), int(sys.argv[2])
threads = os.cpu_count() or 1
# Offload only to a real GPU: llama.cpp built with its RPC backend (as the image's
# prebuilt libraries are) says it supports offload even without one.
gpu = bool(llama_cpp.llama_supports_gpu_offload()) and any(
    os.path.exists(p) for p in ("/dev/nvidia0", "/dev/kfd", "/dev/dri/renderD128"))
llm = llama_cpp.Llama(model_path=MODEL, n_ctx=1024, n_threads=threads, n_threads_batch=threads,
                      n_gpu_layers=-1 if gpu else 0, seed=42, verbose=False)
prompt = ("The Linux kernel scheduler decides which task runs next on each CPU. "
          "Explain briefly how a scheduler balances latency and throughput. ") * repeats
tokens = llm.tokenize(prompt.encode())

llm.reset()
t0 = time.perf_counter()
llm.eval(tokens)
prompt_s = time.perf_counter() - t0

t1 = time.perf_counter()
out = []
for _ in range(n_gen):
    tok = llm.sample(temp=0.0)
    if llm.token_eos() == tok:
        break
    out.append(tok)
    llm.eval([tok])
gen_s = time.perf_counter() - t1
print(f"device={'gpu' if gpu else 'cpu'} threads={threads} llama_cpp_python={llama_cpp.__version__}")
print(f"text={llm.detokenize(out).decode(errors='replace')!r}")
print(f"prompt_tokens={len(tokens)} gen_tokens={len(out)}")
print(f"prompt_tokens_per_s={len(tokens) / prompt_s:.3f}")
print(f"gen_tokens_per_s={len(out) / gen_s:.3f}")
