"""Cold boot to SSH-ready vs reset (restore of the saved state) to SSH-ready.

Both are measured in one run, interleaved (cold, reset, cold, reset, ...), with the
first round dropped as warm-up (it also creates the slot's saved state). "SSH-ready"
means: the persistent relay shell answered its first command and the kernel pin was
checked. Prints one line per round, then:

    BENCH reset cold_s=<median> reset_s=<median> ratio=<cold/reset>

Targets (issue 3): reset_s <= 1.5 and ratio >= 10 on a 2-core TCG host.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import fmt  # noqa: E402
from sandbox.factory import backend_for  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=6, help="rounds incl. one warm-up round")
    ap.add_argument("--recipe", default=None)
    a = ap.parse_args()
    be = backend_for(a.recipe, log=lambda m: print(m, file=sys.stderr))
    print(f"accel={be.accel} image={be.image.key}")
    cold, reset = [], []
    for i in range(a.rounds):
        t = time.monotonic()
        sb = be.cold_boot(job="bench-reset")
        c = time.monotonic() - t
        sb.close()
        t = time.monotonic()
        sb = be.open(job="bench-reset")
        r = time.monotonic() - t
        sb.close()
        tag = "warm-up (dropped)" if i == 0 else ""
        print(f"round {i}: cold {fmt.seconds(c)} s  reset {fmt.seconds(r)} s  {tag}", flush=True)
        if i > 0:
            cold.append(c)
            reset.append(r)
    mc, mr = statistics.median(cold), statistics.median(reset)
    print(f"reset min/max {fmt.seconds(min(reset))}/{fmt.seconds(max(reset))} s; "
          f"cold min/max {fmt.seconds(min(cold))}/{fmt.seconds(max(cold))} s")
    print(f"BENCH reset cold_s={mc:.3f} reset_s={mr:.3f} ratio={mc / mr:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
