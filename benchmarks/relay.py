"""Per-command round trip of a trivial command: persistent relay channel vs one SSH exec
channel per command, on one guest, interleaved in blocks (A B A B ...), warm-up dropped.

    BENCH relay persistent_ms=<median> exec_ms=<median> ratio=<exec/persistent>

Targets (issue 3): persistent_ms <= 2 and ratio >= 50 on a 2-core TCG host.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox.factory import backend_for  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--per-block", type=int, default=50)
    ap.add_argument("--recipe", default=None)
    a = ap.parse_args()
    be = backend_for(a.recipe, log=lambda m: print(m, file=sys.stderr))
    persistent, exec_ = [], []
    with be.open(job="bench-relay") as sb:
        for _ in range(20):  # warm-up, dropped
            sb.run("true")
            sb.exec_once("true")
        for b in range(a.blocks):
            for _ in range(a.per_block):
                t = time.perf_counter()
                r = sb.run("true")
                persistent.append((time.perf_counter() - t) * 1000)
                assert r.returncode == 0
            for _ in range(a.per_block):
                t = time.perf_counter()
                rc, _, _ = sb.exec_once("true")
                exec_.append((time.perf_counter() - t) * 1000)
                assert rc == 0
            print(f"block {b}: persistent {statistics.median(persistent[-a.per_block:]):.2f} ms  "
                  f"exec {statistics.median(exec_[-a.per_block:]):.2f} ms", flush=True)
    mp, me = statistics.median(persistent), statistics.median(exec_)
    print(f"BENCH relay persistent_ms={mp:.2f} exec_ms={me:.2f} ratio={me / mp:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
