"""Calibration: does the scoring call a do-nothing agent a do-nothing agent?

Runs the ``linux-default`` agent (changes nothing) as a job of ``--attempts`` attempts on
workloads of different categories (default: hackbench, latency; gzip, CPU throughput;
sqlite, data), smoke size, with the scoring rules of harness/scoring.py, and counts what
would be false findings: a trial whose verdict is ``improved``, a trial whose SLO verdict
is ``met``. Prints each trial's ratio, CI and verdicts, the report's RQ1 table (with the
noise null), then:

    BENCH calibration trials=<n> false_improved=<k> false_slo_met=<m> mean_ratio=<r> min_ratio=<a> max_ratio=<b>

Targets (issue 20): false_slo_met=0, false_improved at most 1, mean_ratio within
0.97-1.03, every control ratio within 0.95-1.05. Run it on a quiet host: nothing else may
run VMs meanwhile (about 25 minutes here for 9 trials). The job stays in jobs/ (its id is
printed) for ``schedcp report``.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import fmt  # noqa: E402
from harness.job import Display, create_job, run_job  # noqa: E402
from harness.models import JobConfig  # noqa: E402
from harness.report import render  # noqa: E402
from sandbox.factory import backend_for  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workloads", default="hackbench,gzip,sqlite")
    ap.add_argument("--attempts", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=None, help="measured rounds (default: each spec's smoke repetitions)")
    ap.add_argument("--display", default="plain", choices=("plain", "jsonl"))
    a = ap.parse_args()
    be = backend_for(None, log=lambda m: print(m, file=sys.stderr))
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    cfg = JobConfig(job_id=f"{stamp}-calibration", workloads=a.workloads.split(","), agent="linux-default",
                    attempts=a.attempts, parallel=1, size="smoke", repeat=a.repeat)
    d = create_job(cfg, be)
    print(f"job {cfg.job_id} in {d}", flush=True)
    results = run_job(d, cfg, be, Display(a.display))
    print(f"\n{'TRIAL':32} {'RATIO':>7} {'95% CI':>17} {'VERDICT':13} {'SLO':13} {'ORDER':24} {'TRIAL S':>7}")
    ratios, false_imp, false_slo = [], 0, 0
    for r in sorted(results, key=lambda r: r.trial_id):
        imp = r.improvement or {}
        ci = imp.get("ci95")
        if imp.get("ratio"):
            ratios.append(imp["ratio"])
        false_imp += r.verdict == "improved"
        false_slo += (r.slo or {}).get("verdict") == "met"
        print(f"{r.trial_id:32} {fmt.ratio(imp.get('ratio')):>7} "
              f"{fmt.ci(ci):>17} {r.verdict or r.failure_kind:13} "
              f"{(r.slo or {}).get('verdict', '-'):13} {' '.join(r.order):24} {fmt.seconds(r.phases_s.get('total')):>7}")
    print()
    print(render(results, "md"))
    failed = sum(r.status != "done" for r in results)
    print(f"\nBENCH calibration trials={len(results)} false_improved={false_imp} false_slo_met={false_slo} "
          f"mean_ratio={np.mean(ratios) if ratios else float('nan'):.3f} "
          f"min_ratio={min(ratios) if ratios else float('nan'):.3f} max_ratio={max(ratios) if ratios else float('nan'):.3f}"
          + (f" failed={failed}" if failed else ""))
    return 0 if results and not failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
