"""Jobs: a grid of trials (workloads x attempts) for one agent, in ``jobs/<job-id>/``.

``jobs/<job-id>/job.json`` holds the config, image, kernel and host facts;
``jobs/<job-id>/<workload>__<agent>__a<k>/`` holds each trial (``result.json``,
``trajectory.jsonl``, ``console.log``, ``files/``). A trial folder without
``result.json`` was interrupted, and one whose result is ``failure_kind: harness_error``
(an exception of the harness itself, ``traceback.txt`` beside it) did not really run:
:func:`run_job` (and so ``schedcp jobs resume``) deletes either and runs it again, and
never touches any other finished trial. ``job.json`` also records the VM the job's trials
run in (recipe, vCPUs, memory, image key), so that a resumed job runs its remaining trials
in the same VM, or refuses to. Progress goes to a Display
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
import re
import shutil
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import fmt
from .models import JobConfig, TrialConfig, TrialResult
from .trial import read_result, run_trial


def jobs_dir() -> Path:
    return Path(os.environ.get("SCHEDCP_JOBS", "jobs")).resolve()


class JobNotFound(FileNotFoundError):
    """No job of that id under :func:`jobs_dir` (the CLI prints it as a one-line error)."""


_JOB_ID = re.compile(r"[^./\\\x00-\x20][^/\\\x00-\x20]*")


def job_id_error(job_id: str) -> str | None:
    """Why ``job_id`` cannot name a job folder (None: it can): it is one folder name
    under :func:`jobs_dir`, so no slash, no white space, no leading dot."""
    if not _JOB_ID.fullmatch(job_id or "") or len(job_id) > 200:
        return (f"bad job id {job_id!r}: it names one folder under the jobs directory (no slash, space or "
                "leading dot, at most 200 characters)")
    return None


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
                    f"{fmt.metric(d['value'])}")
        if kind == "agent":
            return f"[{d['trial']}] agent: {d['text']}"
        if kind == "trial_end":
            r = d.get("ratio")
            if d["status"] == "skipped":
                return f"[{d['trial']}] skipped: {d.get('reason', '')}"
            return f"[{d['trial']}] {d['status']} ({d['failure_kind']})" + (f" improvement {fmt.ratio(r)}x" if r else "")
        return f"{kind}: " + " ".join(f"{k}={fmt.value(v)}" for k, v in d.items())


def create_job(cfg: JobConfig, backend, vm: dict | None = None) -> Path:
    """Create ``jobs/<job-id>/job.json``. ``vm``: the recipe (as ``schedcp image build``
    names it; None: the default), ``vcpus`` and ``memory_mib`` the job's VMs are made
    with (default: the backend's shape); ``schedcp jobs resume`` uses them again."""
    why = job_id_error(cfg.job_id)
    if why:
        raise ValueError(why)
    d = jobs_dir() / cfg.job_id
    d.mkdir(parents=True, exist_ok=False)
    shape = getattr(backend, "shape", None)
    vm = {"recipe": None, "vcpus": getattr(shape, "vcpus", None), "memory_mib": getattr(shape, "memory_mib", None),
          **(vm or {})}
    job = {
        "schema_version": 1,
        "config": cfg.model_dump(mode="json"),
        "image": backend.image.key,
        # image_sha256: the base image's digest, so that a rebuild under the same key shows
        "vm": {**vm, "image": backend.image.key,
               "image_sha256": (getattr(backend.image.lock, "digests", None) or {}).get("base.qcow2")},
        "kernel_release": backend.image.lock.kernel_release,
        "accel": backend.accel,
        "host": {"node": platform.node(), "machine": platform.machine(), "cpus": os.cpu_count(),
                 "python": platform.python_version()},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "manifest": _manifest(backend),
    }
    (d / "job.json").write_text(json.dumps(job, indent=2))
    return d


def _manifest(backend) -> dict | None:
    """The machine manifest (harness/manifest.py) of a local backend; None for trials that
    run elsewhere (a Ray cluster: the head's profile would say nothing of the workers)."""
    if not hasattr(backend.image, "folder"):
        return None
    from .manifest import machine_manifest

    return machine_manifest(backend)


def job_manifest(d: Path) -> dict | None:
    try:
        return json.loads((d / "job.json").read_text()).get("manifest")
    except (OSError, ValueError):
        return None


def load_job(job_id: str) -> tuple[Path, JobConfig]:
    d = jobs_dir() / job_id
    if job_id_error(job_id) or not (d / "job.json").is_file():
        raise JobNotFound(f"no job {job_id!r} under {jobs_dir()} (`schedcp jobs list` lists them)")
    return d, JobConfig.model_validate(json.loads((d / "job.json").read_text())["config"])


def job_vm(d: Path) -> dict:
    """The VM a job's trials run in, from its ``job.json``: ``recipe`` (None: the default
    recipe), ``vcpus``, ``memory_mib``, ``image`` (the image key) and ``image_sha256`` (its
    base.qcow2). Jobs created before these were recorded give only ``image`` (the others None)."""
    job = json.loads((d / "job.json").read_text())
    vm = dict(job.get("vm") or {})
    vm.setdefault("image", job.get("image"))
    for k in ("recipe", "vcpus", "memory_mib", "image_sha256"):
        vm.setdefault(k, None)
    return vm


RERUN_KINDS = ("harness_error",)  # failure kinds whose trials resume runs again


def rerun_reason(tdir: Path) -> str | None:
    """Why the trial in ``tdir`` must run (again), or None when its result stands: no
    ``result.json`` (interrupted), an unreadable one, or a failure of the harness itself."""
    p = tdir / "result.json"
    if not p.is_file():
        return "not finished"
    try:
        r = json.loads(p.read_text())
    except (OSError, ValueError):
        return "unreadable result.json"
    if r.get("failure_kind") in RERUN_KINDS:
        return f"{r['failure_kind']}: {str(r.get('failure') or '')[:200]}"
    return None


def job_results(d: Path) -> list[TrialResult]:
    out = []
    for t in sorted(p for p in d.iterdir() if p.is_dir()):
        r = read_result(t)
        if r is not None:
            out.append(r)
    return out


def job_state(d: Path, cfg: JobConfig) -> str:
    done = sum(1 for tid, _, _ in trial_ids(cfg) if rerun_reason(d / tid) is None)
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
                       backend=cfg.backend, atif=cfg.atif)


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
        why = rerun_reason(tdir)
        if why is None:
            display("trial_skip", {"trial": tid, "reason": "already recorded"})
            continue
        if tdir.exists():
            if (tdir / "result.json").is_file():
                display("trial_rerun", {"trial": tid, "reason": why})
            shutil.rmtree(tdir)  # interrupted, or the harness failed it: start it over
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
