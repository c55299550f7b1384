"""Soak: many consecutive trials in one process, then a count of what leaked.

Runs N trials (one job, the `replay` agent replaying a small recorded trajectory: a
sysctl change and starting scx_simple) and compares the host before and after:
libvirt domains of schedcp, files under $SCHEDCP_HOME/run (run folders, temporary
overlays), this process's open file descriptors and child processes, and its resident
memory (after the first 3 trials, so imports and first-time allocations do not count).

    BENCH soak trials=<n> leaked_domains=<n> leaked_files=<n> rss_growth_mb=<x>

`make soak` runs 50 trials (SOAK_TRIALS=n to change). Exit status 1 when anything leaked.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import libvirt  # noqa: E402

from harness.job import create_job, run_job  # noqa: E402
from harness.models import Budget, JobConfig  # noqa: E402
from sandbox.factory import backend_for  # noqa: E402
from sandbox.libvirt.backend import PREFIX, run_root, wait_closed  # noqa: E402

RECORDED = [
    {"t": 0.0, "type": "command", "cmd": "sysctl -w kernel.sched_autogroup_enabled=0"},
    {"t": 0.1, "type": "command", "cmd": "setsid -f /opt/schedcp/scx/bin/scx_simple >/var/log/scx.log 2>&1"},
]


def snapshot() -> dict:
    conn = libvirt.open("qemu:///system")
    try:
        doms = sorted(d.name() for d in conn.listAllDomains() if d.name().startswith(PREFIX))
    finally:
        conn.close()
    me = os.getpid()
    kids = 0
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[1]) == me:
                    kids += 1
            except (OSError, IndexError, ValueError):
                pass
    rss = next(int(x.split()[1]) for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmRSS"))
    files = sorted(p.name for p in run_root().iterdir()) if run_root().is_dir() else []
    return {"domains": doms, "files": files, "fds": len(os.listdir("/proc/self/fd")), "children": kids,
            "rss_mb": rss / 1024}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--workload", default="hackbench")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="schedcp-soak-"))
    os.environ["SCHEDCP_JOBS"] = str(tmp / "jobs")
    rec = tmp / "recorded" / "trajectory.jsonl"
    rec.parent.mkdir(parents=True)
    rec.write_text("".join(json.dumps(e) + "\n" for e in RECORDED))
    be = backend_for(None, log=lambda s: print(s, file=sys.stderr))
    before = snapshot()
    cfg = JobConfig(job_id="soak", workloads=[args.workload], agent="replay", attempts=args.trials, repeat=1,
                    budget=Budget(steps=10, wall_s=600))
    d = create_job(cfg, be)
    marks: dict = {}
    t0 = time.monotonic()

    def display(kind, data):
        if kind == "trial_end":
            n = len(marks.setdefault("ended", [])) + 1
            marks["ended"].append(data["status"])
            if n == 3:
                marks["after3"] = snapshot()
            print(f"trial {n}/{args.trials}: {data['status']} ({data['failure_kind']}) "
                  f"{time.monotonic() - t0:.0f}s", flush=True)

    run_job(d, cfg, be, display, agent_kwargs={"trajectory": str(rec)})
    wait_closed()
    time.sleep(2)
    after = snapshot()
    ref = marks.get("after3", before)
    leaked_domains = len(set(after["domains"]) - set(before["domains"]))
    leaked_files = len(set(after["files"]) - set(before["files"]))
    done = marks.get("ended", []).count("done")
    print(f"trials done {done}/{args.trials}; fds {before['fds']} -> {after['fds']}; child processes "
          f"{before['children']} -> {after['children']}; RSS {ref['rss_mb']:.1f} MiB (after 3 trials) -> "
          f"{after['rss_mb']:.1f} MiB; wall {time.monotonic() - t0:.0f}s")
    rss_growth = after["rss_mb"] - ref["rss_mb"]
    print(f"BENCH soak trials={len(marks.get('ended', []))} leaked_domains={leaked_domains} "
          f"leaked_files={leaked_files} rss_growth_mb={rss_growth:.1f}")
    leaked = leaked_domains or leaked_files or after["fds"] > before["fds"] + 2 or after["children"] > before["children"]
    return 1 if leaked or done < args.trials else 0


if __name__ == "__main__":
    sys.exit(main())
