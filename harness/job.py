"""Jobs: a grid of trials (workloads x attempts) for one agent, in ``jobs/<job-id>/``.

``jobs/<job-id>/job.json`` holds the config, image, kernel and host facts;
``jobs/<job-id>/<workload>__<agent>__a<k>/`` holds each trial (``result.json``,
``trajectory.jsonl``, ``console.log``, ``files/``). A trial folder without
``result.json`` was interrupted: :func:`run_job` (and so ``schedcp jobs resume``) deletes
it and runs it again, and never touches a finished one. Progress goes to a Display
(plain text or JSONL) as events, and every event is also appended to
``jobs/<job-id>/events.jsonl`` (with a wall-clock ``ts``), so a job started headless can
be watched from another process (the TUI) and vice versa.

The trials run on this host (:func:`run_local`, ``parallel`` at a time) or, with a runner
from ``harness.distributed``, as Ray tasks on many hosts; the job folder is the same.

A file ``jobs/<job-id>/STOP`` asks a running job to finish its running trials and start
no new one (:func:`request_stop`); the job then ends in state ``stopped`` and can be
continued with ``schedcp jobs resume``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import queue
import shutil
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .models import JobConfig, TrialConfig, TrialResult
from .trial import read_result, run_trial


def jobs_dir() -> Path:
    return Path(os.environ.get("SCHEDCP_JOBS", "jobs")).resolve()


def new_job_id(agent: str) -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S") + f"-{agent.replace(':', '-')}"


def trial_ids(cfg: JobConfig) -> list[tuple[str, str, int]]:
    return [(f"{w}__{cfg.agent.replace(':', '-')}__a{k}", w, k) for w in cfg.workloads for k in range(cfg.attempts)]


class Display:
    """Progress printer: ``plain`` lines for people, ``jsonl`` events for scripts."""

    def __init__(self, mode: str = "plain", stream=None):
        self.mode, self.stream = mode, stream or sys.stdout
        self.lock = threading.Lock()

    def __call__(self, kind: str, data: dict) -> None:
        with self.lock:
            if self.mode == "jsonl":
                self.stream.write(json.dumps({"event": kind, **data}) + "\n")
            else:
                self.stream.write(self._plain(kind, data) + "\n")
            self.stream.flush()

    @staticmethod
    def _plain(kind: str, d: dict) -> str:
        if kind == "phase":
            return f"[{d['trial']}] {d['phase']}"
        if kind == "measure":
            return (f"[{d['trial']}] {d['role']:8} run {d['index']}{' (warm-up)' if d['warmup'] else ''}: "
                    f"{d['value']:.6g}")
        if kind == "agent":
            return f"[{d['trial']}] agent: {d['text']}"
        if kind == "trial_end":
            r = d.get("ratio")
            if d["status"] == "skipped":
                return f"[{d['trial']}] skipped: {d.get('reason', '')}"
            return f"[{d['trial']}] {d['status']} ({d['failure_kind']})" + (f" improvement {r:.3f}x" if r else "")
        return f"{kind}: " + " ".join(f"{k}={v}" for k, v in d.items())


def create_job(cfg: JobConfig, backend) -> Path:
    d = jobs_dir() / cfg.job_id
    d.mkdir(parents=True, exist_ok=False)
    job = {
        "schema_version": 1,
        "config": cfg.model_dump(mode="json"),
        "image": backend.image.key,
        "kernel_release": backend.image.lock.kernel_release,
        "accel": backend.accel,
        "host": {"node": platform.node(), "machine": platform.machine(), "cpus": os.cpu_count(),
                 "python": platform.python_version()},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    (d / "job.json").write_text(json.dumps(job, indent=2))
    return d


def load_job(job_id: str) -> tuple[Path, JobConfig]:
    d = jobs_dir() / job_id
    if not (d / "job.json").is_file():
        raise FileNotFoundError(f"no job {job_id!r} under {jobs_dir()}")
    return d, JobConfig.model_validate(json.loads((d / "job.json").read_text())["config"])


def job_results(d: Path) -> list[TrialResult]:
    out = []
    for t in sorted(p for p in d.iterdir() if p.is_dir()):
        r = read_result(t)
        if r is not None:
            out.append(r)
    return out


def job_state(d: Path, cfg: JobConfig) -> str:
    done = sum(1 for tid, _, _ in trial_ids(cfg) if (d / tid / "result.json").is_file())
    total = len(trial_ids(cfg))
    return "complete" if done == total else f"{done}/{total} trials"


EVENTS_FILE = "events.jsonl"
STOP_FILE = "STOP"


class EventLog:
    """Sends each event to a Display and appends it to the job's ``events.jsonl``."""

    def __init__(self, path: Path, display):
        self.path, self.display = path, display
        self.lock = threading.Lock()

    def __call__(self, kind: str, data: dict) -> None:
        rec = {"ts": round(_dt.datetime.now(_dt.timezone.utc).timestamp(), 3), "event": kind, **data}
        with self.lock, open(self.path, "a") as f:
            f.write(json.dumps(rec, default=str) + "\n")
        self.display(kind, data)


def read_events(d: Path, offset: int = 0) -> tuple[list[dict], int]:
    """Events appended to ``d/events.jsonl`` since byte ``offset``; returns them and the new
    offset. A half-written last line is left for the next call."""
    return tail_jsonl(d / EVENTS_FILE, offset)


def tail_jsonl(path: Path, offset: int = 0) -> tuple[list[dict], int]:
    """Records appended to a JSONL file since byte ``offset`` (a partial last line waits)."""
    if not path.is_file():
        return [], offset
    with open(path, "rb") as f:
        f.seek(offset)
        chunk = f.read()
    end = chunk.rfind(b"\n") + 1
    out = []
    for line in chunk[:end].splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out, offset + end


def request_stop(d: Path) -> None:
    """Ask the job in ``d`` to start no new trial (running ones finish and are recorded)."""
    (d / STOP_FILE).write_text(_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds") + "\n")


def trial_config(cfg: JobConfig, tid: str, wl: str, k: int) -> TrialConfig:
    return TrialConfig(job_id=cfg.job_id, trial_id=tid, workload=wl, agent=cfg.agent, model=cfg.model, attempt=k,
                       size=cfg.size, repeat=cfg.repeat, slo_hint=cfg.slo_hint, budget=cfg.budget, interface=cfg.interface,
                       backend=cfg.backend)


def stop_requested(d: Path) -> bool:
    return (d / STOP_FILE).exists()


def run_job(d: Path, cfg: JobConfig, backend, display: Display, agent_kwargs: dict | None = None,
            runner=None) -> list[TrialResult]:
    """Run the job's unfinished trials. ``runner(d, cfg, todo, events, agent_kwargs)`` runs
    the ``todo`` list of ``(trial_id, workload, attempt)``; the default runs them on this
    host (:func:`run_local`, with ``backend``); ``harness.distributed.RayRunner`` sends
    them to a Ray cluster. Either way each finished trial is ``d/<trial_id>/``."""
    (d / STOP_FILE).unlink(missing_ok=True)  # a resumed job runs again
    display = EventLog(d / EVENTS_FILE, display)
    todo = []
    for tid, wl, k in trial_ids(cfg):
        tdir = d / tid
        if (tdir / "result.json").is_file():
            display("trial_skip", {"trial": tid, "reason": "already recorded"})
            continue
        if tdir.exists():
            shutil.rmtree(tdir)  # interrupted: start it over
        todo.append((tid, wl, k))
    display("job_start", {"job": cfg.job_id, "trials": len(trial_ids(cfg)), "to_run": len(todo)})
    if cfg.base_url:  # the model API's URL (host side only; never written into the guest)
        agent_kwargs = {"base_url": cfg.base_url, **(agent_kwargs or {})}
    if runner is None:
        run_local(d, cfg, todo, display, agent_kwargs, backend)
    else:
        runner(d, cfg, todo, display, agent_kwargs)
    results = job_results(d)
    state = job_state(d, cfg)
    if state != "complete" and stop_requested(d):
        state = "stopped, " + state
    display("job_end", {"job": cfg.job_id, "state": state})
    return results


def run_local(d: Path, cfg: JobConfig, todo: list, display, agent_kwargs: dict | None, backend) -> None:
    """Run trials on this host, ``cfg.parallel`` at a time."""
    # each concurrent trial gets its own host cores when the host has enough of them
    from sandbox.libvirt.backend import plan_cores

    vcpus = getattr(getattr(backend, "shape", None), "vcpus", 2)
    plan = plan_cores(max(1, cfg.parallel), vcpus)
    if plan is None:
        display("warning", {"job": cfg.job_id, "text": f"{cfg.parallel} trials x {vcpus} vCPUs do not fit this host's "
                            "cores: trials share cores, so concurrent measurements can disturb each other"})
    free: queue.Queue = queue.Queue()
    for c in plan or [None] * max(1, cfg.parallel):
        free.put(c)

    def one(item):
        cores = free.get()
        try:
            return _one(item, cores)
        finally:
            free.put(cores)

    def _one(item, cores):
        tid, wl, k = item
        if stop_requested(d):
            display("trial_skip", {"trial": tid, "reason": "job stop requested"})
            return None
        display("trial_start", {"trial": tid, **({"cores": list(cores)} if cores else {})})
        return run_trial(trial_config(cfg, tid, wl, k), d / tid, backend, events=display,
                         agent_kwargs=agent_kwargs, cores=cores)

    with ThreadPoolExecutor(max_workers=max(1, cfg.parallel)) as pool:
        list(pool.map(one, todo))
