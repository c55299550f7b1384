"""The harness's own share of trial wall time.

Runs a short job (hackbench, smoke size) with the `replay` agent, replaying a small
recorded trajectory (a sysctl change and starting scx_simple), and splits each trial's
wall time into workload runs (the measured runs and the agent's trial runs, timed by
the relay), agent thinking (zero for replay: it does not think) and the rest, which is
the harness: resets, uploads and set-up plumbing, relay commands, sysctl snapshots,
statistics, result writing. Interleaved trials, the first one dropped as warm-up.

    BENCH overhead trial_s=<median> harness_share=<fraction>

Target (issue 5): harness share below 5 %.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import fmt  # noqa: E402
from harness.models import TrialConfig  # noqa: E402
from harness.trial import run_trial  # noqa: E402
from sandbox.factory import backend_for  # noqa: E402

RECORDED = [
    {"t": 0.0, "type": "command", "cmd": "sysctl -w kernel.sched_autogroup_enabled=0"},
    {"t": 0.1, "type": "command", "cmd": "setsid -f /opt/schedcp/scx/bin/scx_simple >/var/log/scx.log 2>&1"},
]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=4, help="including one warm-up trial")
    ap.add_argument("--workload", default="hackbench")
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    be = backend_for(None, log=lambda m: print(m, file=sys.stderr))
    tmp = Path(tempfile.mkdtemp(prefix="schedcp-overhead-"))
    src = tmp / "recorded" / "trajectory.jsonl"
    src.parent.mkdir(parents=True)
    src.write_text("".join(json.dumps(e) + "\n" for e in RECORDED))
    totals, shares = [], []
    for i in range(a.trials):
        cfg = TrialConfig(trial_id=f"overhead-{i}", workload=a.workload, agent="replay", repeat=a.repeat)
        tdir = tmp / cfg.trial_id
        res = run_trial(cfg, tdir, be, agent_kwargs={"trajectory": src})
        assert res.status == "done", res.failure
        runs = sum(e.get("duration_s", 0.0) for e in map(json.loads, (tdir / "trajectory.jsonl").read_text().splitlines())
                   if e["type"] in ("measure", "trial_run"))
        total = res.phases_s["total"]
        share = (total - runs) / total
        print(f"trial {i}: total {fmt.seconds(total)} s, workload runs {fmt.seconds(runs)} s, harness "
              f"{fmt.seconds(total - runs)} s ({fmt.percent(share)}) phases "
              + ", ".join(f"{k} {fmt.seconds(v)} s" for k, v in res.phases_s.items())
              + ("  warm-up (dropped)" if i == 0 else ""), flush=True)
        if i > 0:
            totals.append(total)
            shares.append(share)
    print(f"BENCH overhead trial_s={statistics.median(totals):.2f} harness_share={statistics.median(shares):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
