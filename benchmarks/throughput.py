"""Trials per hour with one trial at a time and with the default parallelism.

Runs the same short job (the `linux-default` agent on smoke workloads, so the time is
the harness and the measurements, not an LLM) with --parallel 1 and then with the
default parallelism for this host (one trial per `vcpus` host cores that memory allows;
`--parallel N` to force another value), in one run, and prints

    BENCH throughput serial_trials_per_h=<x> parallel_trials_per_h=<y> speedup=<y/x>
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.job import create_job, job_results, run_job  # noqa: E402
from harness.models import JobConfig  # noqa: E402
from sandbox.factory import backend_for  # noqa: E402
from sandbox.libvirt.backend import default_parallel, host_cores  # noqa: E402


def rate(be, workloads: list[str], attempts: int, parallel: int, repeat: int, tag: str) -> float:
    cfg = JobConfig(job_id=f"throughput-{tag}-{os.getpid()}", workloads=workloads, agent="linux-default",
                    attempts=attempts, parallel=parallel, repeat=repeat)
    d = create_job(cfg, be)
    t = time.monotonic()
    run_job(d, cfg, be, lambda k, e: None)
    wall = time.monotonic() - t
    done = sum(r.status == "done" for r in job_results(d))
    print(f"parallel={parallel}: {done} trials in {wall:.0f} s", flush=True)
    return done / wall * 3600


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workloads", default="hackbench,sqlite")
    ap.add_argument("--attempts", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--parallel", type=int, default=None, help="default: what this host fits")
    args = ap.parse_args()
    os.environ["SCHEDCP_JOBS"] = tempfile.mkdtemp(prefix="schedcp-throughput-")
    be = backend_for(None, log=lambda s: print(s, file=sys.stderr))
    par = args.parallel or default_parallel(be.shape.vcpus, be.shape.memory_mib)
    print(f"host: {len(host_cores())} cores; VM: {be.shape.vcpus} vCPUs, {be.shape.memory_mib} MiB; "
          f"default parallelism {default_parallel(be.shape.vcpus, be.shape.memory_mib)}", flush=True)
    wls = args.workloads.split(",")
    serial = rate(be, wls, args.attempts, 1, args.repeat, "serial")
    parallel = rate(be, wls, args.attempts, par, args.repeat, "parallel")
    print(f"BENCH throughput serial_trials_per_h={serial:.1f} parallel_trials_per_h={parallel:.1f} "
          f"speedup={parallel / serial:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
