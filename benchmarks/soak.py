"""Soak: many consecutive trials in one process, then a count of what leaked.

Runs N trials (one job, the `replay` agent replaying a small recorded trajectory: a
sysctl change and starting scx_simple) and compares the host before and after:
libvirt domains of this job (its id is in each VM's metadata), files under
$SCHEDCP_HOME/run made by this process (run folders and temporary overlays: their lock
file names the pid), this process's open file descriptors and child processes, and its
resident memory (after the first 3 trials, so imports and first-time allocations do not
count). Other processes' VMs and run folders are not counted, so it can run beside them.

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

import xml.etree.ElementTree as ET  # noqa: E402

import libvirt  # noqa: E402

from harness.job import create_job, run_job  # noqa: E402
from harness.models import Budget, JobConfig  # noqa: E402
from sandbox.factory import backend_for  # noqa: E402
from sandbox.libvirt.backend import PREFIX, run_root, wait_closed  # noqa: E402
from sandbox.libvirt.domain import SCHEDCP_NS  # noqa: E402

RECORDED = [
    {"t": 0.0, "type": "command", "cmd": "sysctl -w kernel.sched_autogroup_enabled=0"},
    {"t": 0.1, "type": "command", "cmd": "setsid -f /opt/schedcp/scx/bin/scx_simple >/var/log/scx.log 2>&1"},
]


def _job_of(xml: str) -> str:
    el = ET.fromstring(xml).find(f"metadata/{{{SCHEDCP_NS}}}sandbox")
    return el.get("job", "") if el is not None else ""


def _mine(run_dir: Path) -> bool:
    try:
        return (run_dir / "lock").read_text().strip() == str(os.getpid())
    except OSError:
        return False


def snapshot(job: str) -> dict:
    conn = libvirt.open("qemu:///system")
    try:
        doms = []
        for d in conn.listAllDomains():
            if d.name().startswith(PREFIX):
                try:
                    if _job_of(d.XMLDesc()) == job:
                        doms.append(d.name())
                except libvirt.libvirtError:  # gone meanwhile
                    pass
        doms.sort()
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
    files = sorted(p.name for p in run_root().iterdir() if _mine(p)) if run_root().is_dir() else []
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
    job = f"soak-{os.getpid()}"
    before = snapshot(job)
    cfg = JobConfig(job_id=job, workloads=[args.workload], agent="replay", attempts=args.trials, repeat=1,
                    budget=Budget(steps=10, wall_s=600))
    d = create_job(cfg, be)
    marks: dict = {}
    t0 = time.monotonic()

    def display(kind, data):
        if kind == "trial_end":
            n = len(marks.setdefault("ended", [])) + 1
            marks["ended"].append(data["status"])
            if n == 3:
                marks["after3"] = snapshot(job)
            print(f"trial {n}/{args.trials}: {data['status']} ({data['failure_kind']}) "
                  f"{time.monotonic() - t0:.0f}s", flush=True)

    run_job(d, cfg, be, display, agent_kwargs={"trajectory": str(rec)})
    wait_closed()
    time.sleep(2)
    after = snapshot(job)
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
