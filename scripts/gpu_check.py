"""The GPU check behind scripts/gpu-check.sh: run on a GPU host, natively (no VM).

It needs only Python 3 and nvidia-ml-py (``pynvml``); PyTorch, FAISS (a GPU build),
llama-cpp-python (a CUDA build) and vLLM are used where installed. No network. Steps:

1. NVML: what it says of each GPU, and 3 s of idle sampling (idle power).
2. Each GPU workload's own program (``workloads/<name>/``), at each size, ``--runs`` times
   (the first is a warm-up, dropped) under :class:`harness.gpu.HostSampler`: the program's
   metrics, the device it says it ran on, and per run the GPU's mean utilisation, peak
   memory, mean power and energy (the total-energy counter's delta over the whole process,
   start-up included). Per metric: median and CV over the measured runs.
3. One report file (Markdown with the raw figures as JSON at the end); a summary on stdout.

A workload whose GPU path needs what is not installed is listed as skipped with the reason
(llama.cpp's GPU path needs a CUDA build of llama-cpp-python; vLLM needs its wheel and a
model); one that ran on the CPU is marked so: only ``device=cuda``/``gpu`` rows exercised a
GPU path. Without a usable NVIDIA GPU it stops at step 1 (exit 2), writes nothing.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness import gpu  # noqa: E402  (standard library + pynvml only)

# what each workload's spec runs (workloads/<name>/workload.yaml `run:`; a unit test keeps
# these equal), its primary metric, and what its GPU path needs
PROGRAMS = {
    "pytorch": {"run": {"smoke": "./train.py 150 --gpu-steps 3000", "full": "./train.py 3000 256 1024"}, "primary": "steps_per_s"},
    "faiss": {"run": {"smoke": "./search.py 50000 300", "full": "./search.py 1000000 10000"}, "primary": "flat_qps"},
    "llama-cpp": {"run": {"smoke": "./generate.py 1 8", "full": "./generate.py 8 256"},
                  "primary": "gen_tokens_per_s"},
    "vllm": {"run": {"smoke": "./generate.py 16 64", "full": "./generate.py 512 256"},
             "primary": "output_tokens_per_s"},
}
_NUM = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(-?[0-9.]+(?:[eE][-+]?[0-9]+)?)\s*$")
_DEVICE = re.compile(r"^device=(\S+)", re.M)


def gpu_path_reason(name: str) -> str | None:
    """Why ``name``'s GPU path cannot run here (None: it can be tried)."""
    def has(mod):
        return importlib.util.find_spec(mod) is not None

    if name == "pytorch":
        if not has("torch"):
            return "PyTorch is not installed"
        import torch

        return None if torch.cuda.is_available() else f"PyTorch {torch.__version__} sees no CUDA device"
    if name == "faiss":
        if not has("faiss"):
            return "FAISS is not installed (its GPU path needs a GPU build, e.g. conda's faiss-gpu)"
        import faiss

        if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() < 1:
            return "this FAISS build has no GPU support (faiss-cpu)"
        return None
    if name == "llama-cpp":
        if not has("llama_cpp"):
            return "llama-cpp-python is not installed (its GPU path needs a CUDA build of llama.cpp)"
        import llama_cpp

        if not llama_cpp.llama_supports_gpu_offload():
            return "llama-cpp-python was built without GPU offload (needs a CUDA build)"
        model = os.environ.get("LLAMA_MODEL", "/opt/schedcp/models/gemma-3-270m-q4_k_m.gguf")
        return None if Path(model).is_file() else f"no model at {model} (set LLAMA_MODEL to a GGUF file)"
    if name == "vllm":
        if not has("vllm"):
            return "vLLM is not installed (PyPI vllm, a CUDA wheel)"
        model = os.environ.get("VLLM_MODEL", "/opt/schedcp/models/gemma-3-270m-q4_k_m.gguf")
        return None if Path(model).exists() else f"no model at {model} (set VLLM_MODEL)"
    return f"unknown workload {name}"


def parse(out: str) -> tuple[dict[str, float], str]:
    metrics = {}
    for line in out.splitlines():
        m = _NUM.match(line.strip())
        if m:
            metrics[m.group(1)] = float(m.group(2))
    dev = _DEVICE.search(out)
    return metrics, dev.group(1) if dev else "?"


def cv(xs: list[float]) -> float | None:
    """Sample standard deviation over the mean (None below 2 values or a zero mean)."""
    if len(xs) < 2 or statistics.fmean(xs) == 0:
        return None
    return statistics.stdev(xs) / abs(statistics.fmean(xs))


def run_one(name: str, cmd: str, timeout: float) -> dict:
    folder = REPO / "workloads" / name
    argv = cmd.split()
    argv[0] = str(folder / argv[0][2:] if argv[0].startswith("./") else argv[0])
    s = gpu.HostSampler(interval_s=0.05).start()
    t0 = time.monotonic()
    try:
        p = subprocess.run([sys.executable, *argv], cwd=folder, capture_output=True, text=True, timeout=timeout)
        rc, out = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out = 124, f"timed out after {timeout:.0f}s: {e}"
    wall = time.monotonic() - t0
    g = s.stop()
    metrics, dev = parse(out)
    return {"rc": rc, "wall_s": round(wall, 3), "device": dev, "metrics": metrics,
            "gpu": gpu.run_figures(g) if "gpus" in g else g, "gpu_energy_source": g.get("energy_source", ""),
            "tail": "\n".join(out.strip().splitlines()[-3:]) if rc else ""}


def summarize_runs(runs: list[dict]) -> dict:
    """Measured runs (the warm-up already dropped) -> per metric and per GPU figure: median, CV, n."""
    out: dict[str, dict] = {}
    for kind in ("metrics", "gpu"):
        keys = sorted({k for r in runs for k in (r.get(kind) or {}) if isinstance(r[kind].get(k), (int, float))})
        for k in keys:
            xs = [r[kind][k] for r in runs if isinstance((r.get(kind) or {}).get(k), (int, float))]
            c = cv(xs)
            out[f"{'gpu.' if kind == 'gpu' else ''}{k}"] = {"median": statistics.median(xs), "n": len(xs),
                                                            "cv_pct": None if c is None else round(100 * c, 2)}
    return out


def render(report: dict) -> str:
    """The report file's text (Markdown)."""
    L = [f"# gpu-check on {report['host']} ({report['date']})", "",
         f"Python {report['python']}; runs per size: {report['runs']} (the first dropped as a warm-up)", ""]
    L.append("## GPUs (NVML)")
    for d in report["devices"]:
        L.append("- " + ", ".join(f"{k} {v}" for k, v in d.items()))
    idle = report.get("idle") or {}
    if idle.get("gpus"):
        L.append(f"- idle over {idle['gpus'][0].get('interval_s')} s: "
                 + "; ".join(f"GPU {g['gpu']} {g.get('power_mean_w')} W, {g.get('util_mean_pct')} % util"
                             for g in idle["gpus"]))
    L += ["", "## Workloads", ""]
    L.append("| workload | size | device | metric | median | CV % | n | run wall s |")
    L.append("|---|---|---|---|---|---|---|---|")
    for w in report["workloads"]:
        if w.get("skipped"):
            L.append(f"| {w['name']} | - | - | skipped: {w['skipped']} | | | | |")
            continue
        for size, res in w["sizes"].items():
            if res.get("error"):
                L.append(f"| {w['name']} | {size} | {res.get('device', '?')} | failed: {res['error']} | | | | |")
                continue
            walls = [r["wall_s"] for r in res["runs"]]
            for k, st in res["summary"].items():
                L.append(f"| {w['name']} | {size} | {res['device']} | {k} | {st['median']:.6g} | "
                         f"{'-' if st['cv_pct'] is None else st['cv_pct']} | {st['n']} | "
                         f"{statistics.median(walls):.2f} |")
    L += ["", "Energy per run (`gpu.energy_j`) is the GPU total-energy counter's delta over the whole process "
          "(start-up included); the metrics are the program's own, timed inside it. Only rows whose device is "
          "cuda/gpu exercised a GPU path.", "", "## Raw", "", "```json", json.dumps(report, indent=1), "```", ""]
    return "\n".join(L)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gpu-check.sh", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=6, help="runs per size, the first dropped (default 6)")
    ap.add_argument("--sizes", default="smoke,full")
    ap.add_argument("--workloads", default=",".join(PROGRAMS))
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    ap.add_argument("--out", default=None, help="report file (default gpu-check-HOST-DATE.md here)")
    a = ap.parse_args(argv)
    if a.runs < 2:
        print("gpu-check: --runs must be at least 2 (the first is dropped)", file=sys.stderr)
        return 2
    why = gpu.nvml_reason()
    if why:
        print(f"gpu-check: no usable NVIDIA GPU here ({why}); nothing was run, no report written", file=sys.stderr)
        return 2
    host = platform.node() or "host"
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H%MZ")
    out = Path(a.out or f"gpu-check-{host}-{date}.md")
    print(f"gpu-check: NVML sees {len(gpu.devices())} GPU(s); sampling 3 s idle", flush=True)
    idle = gpu.HostSampler(interval_s=0.1).start()
    time.sleep(3)
    report = {"host": host, "date": date, "python": platform.python_version(), "runs": a.runs,
              "devices": gpu.devices(), "idle": idle.stop(), "workloads": []}
    for name in [w for w in a.workloads.split(",") if w]:
        if name not in PROGRAMS:
            print(f"gpu-check: no workload {name!r} (known: {', '.join(PROGRAMS)})", file=sys.stderr)
            return 2
        skip = gpu_path_reason(name)
        if skip:
            print(f"{name}: skipped: {skip}", flush=True)
            report["workloads"].append({"name": name, "skipped": skip})
            continue
        w = {"name": name, "sizes": {}}
        for size in [s for s in a.sizes.split(",") if s]:
            cmd = PROGRAMS[name]["run"][size]
            runs = []
            for i in range(a.runs):
                r = run_one(name, cmd, a.timeout)
                print(f"{name} {size} run {i}{' (warm-up)' if i == 0 else ''}: rc {r['rc']} device {r['device']} "
                      f"{PROGRAMS[name]['primary']}={r['metrics'].get(PROGRAMS[name]['primary'])} "
                      f"gpu energy {r['gpu'].get('energy_j') if isinstance(r['gpu'], dict) else None} J "
                      f"wall {r['wall_s']} s", flush=True)
                runs.append(r)
                if r["rc"] != 0:
                    break
            bad = [r for r in runs if r["rc"] != 0]
            res = {"cmd": cmd, "device": runs[-1]["device"], "runs": runs}
            if bad:
                res["error"] = f"exit {bad[0]['rc']}: {bad[0]['tail']}"
            else:
                res["summary"] = summarize_runs(runs[1:])
            w["sizes"][size] = res
        report["workloads"].append(w)
    out.write_text(render(report))
    print(f"gpu-check: report written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
