"""Run-to-run noise of every smoke workload's baseline (Linux defaults).

Each workload runs in its own fresh sandbox: its warm-up run(s) are dropped, then
``--repeat`` runs back to back; the CV (stdev/mean) of the primary metric and the median
wall time of one run (as the host saw it) are reported. ``--workloads a,b`` restricts
the set; a workload that requires a GPU the sandbox lacks is listed as skipped, with why.

    BENCH noise workloads=<n> median_cv=<x> max_cv=<y>

Target (issue 4): median CV across smoke workloads at most 5 % under TCG.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import fmt  # noqa: E402
from harness.bench import run_workload  # noqa: E402
from harness.workload import backend_refusal, list_workloads, load_workload  # noqa: E402
from sandbox.factory import backend_for  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--workloads", default="", help="comma-separated names (default: all that do not require a GPU)")
    a = ap.parse_args()
    wls = ([load_workload(n) for n in a.workloads.split(",")] if a.workloads
           else [w for w in list_workloads() if not w.spec.requirements.gpu_required])
    be = backend_for(None, log=lambda m: print(m, file=sys.stderr))
    cvs = []
    print(f"{'WORKLOAD':16} {'PRIMARY METRIC':30} {'MEDIAN':>10} {'CV':>7}  N  {'RUN S':>6}")
    for wl in wls:
        why = backend_refusal(wl.spec, be)
        if why:
            print(f"{wl.name:16} skipped: {why}", flush=True)
            continue
        with be.open(job="bench-noise", trial=wl.name) as sb:
            res = run_workload(sb, wl, "smoke", repeat=a.repeat)
        st = res.summary()[wl.spec.primary.metric]
        cvs.append(st["cv"])
        run_s = statistics.median(r.duration_s for r in res.runs if not r.warmup)  # one run, as the relay saw it
        print(f"{wl.name:16} {wl.spec.primary.metric + ' (' + wl.spec.primary_metric.unit + ')':30} "
              f"{fmt.metric(st['median']):>10} {fmt.percent(st['cv']):>7}  {st['n']}  {fmt.seconds(run_s):>6}", flush=True)
    if not cvs:
        print("BENCH noise workloads=0 (every one was skipped)")
        return 0
    print(f"BENCH noise workloads={len(cvs)} median_cv={statistics.median(cvs):.4f} max_cv={max(cvs):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
