"""A job without VMs (and `sandbox cleanup` without libvirt): `schedcp run` arguments -> job.json + events.jsonl (real harness
code for both), first trial in phase `agent`, then sleep until killed or STOP appears."""

import json
import sys
import time

from harness.cli import build_parser
from harness.job import EVENTS_FILE, STOP_FILE, EventLog, jobs_dir, trial_ids
from harness.models import JobConfig

if sys.argv[1:] == ["sandbox", "cleanup"]:  # what the TUI runs after "stop now": leave a mark
    (jobs_dir() / "cleanup-ran").write_text("")
    sys.exit(0)
if sys.argv[1:3] == ["jobs", "resume"]:  # finish every unrecorded trial at once
    d = jobs_dir() / sys.argv[3]
    cfg = JobConfig.model_validate(json.loads((d / "job.json").read_text())["config"])
    log = EventLog(d / EVENTS_FILE, lambda k, data: None)
    log("job_start", {"job": cfg.job_id, "trials": len(trial_ids(cfg)), "to_run": 1})
    for tid, wl, k in trial_ids(cfg):
        if (d / tid / "result.json").is_file():
            log("trial_skip", {"trial": tid, "reason": "already recorded"})
            continue
        log("trial_start", {"trial": tid})
        (d / tid).mkdir(exist_ok=True)
        (d / tid / "result.json").write_text(json.dumps({"trial_id": tid, "workload": wl, "agent": cfg.agent,
                                                         "status": "done", "improvement": {"ratio": 1.01}}))
        log("trial_end", {"trial": tid, "status": "done", "failure_kind": "none", "ratio": 1.01})
    log("job_end", {"job": cfg.job_id, "state": "complete"})
    sys.exit(0)
a, _ = build_parser().parse_known_args(sys.argv[1:])  # options of a newer CLI (--interface) pass
if a.job_id == "fail-early":  # as `schedcp run` does when, e.g., no image is built
    print("schedcp: error: no image built (run `schedcp image build`)", file=sys.stderr)
    sys.exit(2)
cfg = JobConfig(job_id=a.job_id, workloads=a.workloads.split(","), agent=a.agent, attempts=a.attempts,
                parallel=a.parallel, repeat=a.repeat)
d = jobs_dir() / cfg.job_id
d.mkdir(parents=True)
(d / "job.json").write_text(json.dumps({"schema_version": 1, "config": cfg.model_dump(mode="json"),
                                        "created": "2026-11-29T12:00:00+00:00"}))
log = EventLog(d / EVENTS_FILE, lambda k, data: print(json.dumps({"event": k, **data}), flush=True))
log("job_start", {"job": cfg.job_id, "trials": len(trial_ids(cfg)), "to_run": len(trial_ids(cfg))})
tid = trial_ids(cfg)[0][0]
log("trial_start", {"trial": tid})
log("phase", {"trial": tid, "phase": "agent"})
log("agent", {"trial": tid, "text": "fake agent at work", "steps": 2, "tokens": 300, "cost_usd": 0.01})
for _ in range(600):
    if (d / STOP_FILE).exists():
        log("job_end", {"job": cfg.job_id, "state": "stopped, 0/1 trials"})
        sys.exit(0)
    time.sleep(0.1)
