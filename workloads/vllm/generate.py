#!/opt/schedcp/py/bin/python
"""vLLM offline batched generation (GPU only).

Usage: generate.py N_PROMPTS MAX_TOKENS. Generates MAX_TOKENS tokens for each of
N_PROMPTS fixed prompts in one batch (greedy) and prints output_tokens_per_s= and
requests_per_s=, timed inside the process (engine start-up and model load are not
timed). The model is $VLLM_MODEL (default: the image's Gemma 3 270M GGUF, whose file also
carries the tokenizer). vLLM needs a GPU: the harness refuses this workload in a sandbox
without one, before it starts.
"""

import os
import sys
import time

try:
    from vllm import LLM, SamplingParams
except ImportError as e:
    sys.exit(f"vllm is not installed in this image ({e}); the GPU image must add PyPI vllm to /opt/schedcp/py")

MODEL = os.environ.get("VLLM_MODEL", "/opt/schedcp/models/gemma-3-270m-q4_k_m.gguf")
n, max_tokens = int(sys.argv[1]), int(sys.argv[2])
llm = LLM(model=MODEL, tokenizer=os.environ.get("VLLM_TOKENIZER", MODEL), seed=42, enforce_eager=False)
prompts = [f"Request {i}: explain in a few sentences how a CPU scheduler trades latency for throughput."
           for i in range(n)]
params = SamplingParams(temperature=0.0, max_tokens=max_tokens, ignore_eos=True)
llm.generate(prompts[:2], SamplingParams(temperature=0.0, max_tokens=8))  # warm-up: graphs, caches
t0 = time.perf_counter()
outs = llm.generate(prompts, params)
dt = time.perf_counter() - t0
tokens = sum(len(o.outputs[0].token_ids) for o in outs)
print(f"output_tokens={tokens} seconds={dt:.4f}")
print(f"output_tokens_per_s={tokens / dt:.2f}")
print(f"requests_per_s={n / dt:.3f}")
