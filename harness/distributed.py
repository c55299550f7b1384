"""Many hosts through Ray: each trial of a job is a Ray task on a worker host.

Every worker host runs ``schedcp worker start --address HEAD:PORT`` (:func:`start_worker`):
it checks that libvirtd answers and that the recipe's image is built and matches its
sha256 digests, then joins the cluster with ``ray start``, advertising the custom
resources ``vm_slots`` (trials it may run at once) and ``gpu_slots`` (for GPU workloads),
and no CPUs, so Ray's CPU accounting never holds a trial back.

``schedcp run ... --ray ADDRESS`` runs the job through :class:`RayRunner` instead of this
host's thread pool (``harness.job.run_job`` is the same for both). Each trial is a task
that needs ``{"vm_slots": 1}`` (plus ``{"gpu_slots": 1}`` when the workload's
``requirements.gpu``); on the worker it opens a backend for the job's recipe and VM shape
(never building an image), runs :func:`harness.trial.run_trial` into a worker-local
folder and returns that whole folder as a tar. The driver unpacks it into
``jobs/<job-id>/<trial-id>/``, so the job folder has the layout of a local run. Progress
events stream back while trials run through a small actor on the driver's node
(``_EventQueue``) into the job's ``events.jsonl`` and display.

A worker host that dies (its raylet or the task's process) makes Ray retry the task on
another host (``max_retries``); a trial that fails for its own reasons returns its
recorded failure and is not retried (``retry_exceptions=False``). The driver writes a
trial's folder once: the first result wins and any later one is ignored
(:func:`unpack_trial`), so a retried trial is counted once. Each attempt announces its
host and number (``trial_start``; ``trial_retry`` from the second attempt on).

Ray is imported only here, and only when a Ray code path runs (extra ``[ray]``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

VM_SLOTS, GPU_SLOTS = "vm_slots", "gpu_slots"
MAX_RETRIES = 3  # attempts after the first one, for lost workers only


class DistributedError(Exception):
    """A Ray cluster problem worth one clear line (not installed, unreachable, no workers)."""


def require_ray():
    try:
        import ray
    except ImportError:
        raise DistributedError("Ray is not installed: pip install -e '.[ray]' (or '.[test]')") from None
    return ray


def trial_resources(spec) -> dict[str, float]:
    """The custom resources one trial of a workload (its ``WorkloadSpec``) needs."""
    res = {VM_SLOTS: 1.0}
    gpu = spec.requirements.gpu  # a bool, or the level none / optional / required
    if gpu is True or gpu == "required":  # an optional GPU is used only where a trial finds one
        res[GPU_SLOTS] = 1.0
    return res


# -- trial folders as bytes ----------------------------------------------------------
def pack_dir(folder: Path) -> bytes:
    """A folder's files as a gzipped tar, names relative to the folder."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for p in sorted(folder.rglob("*")):
            if p.is_file() and not p.is_symlink():
                tar.add(p, arcname=str(p.relative_to(folder)), recursive=False)
    return buf.getvalue()


def unpack_dir(blob: bytes, dest: Path) -> None:
    """The inverse of pack_dir, into a new folder ``dest``."""
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        tar.extractall(dest, filter="data")  # no absolute names, no "..", no links out, no devices


def unpack_trial(blob: bytes, d: Path, tid: str) -> bool:
    """Put a trial folder returned by a worker at ``d/tid``. False (and nothing written)
    when that trial is already recorded there: the first result wins."""
    dest = d / tid
    if (dest / "result.json").is_file():
        return False
    tmp = d / f".{tid}.incoming"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        unpack_dir(blob, tmp)
        if not (tmp / "result.json").is_file():
            raise DistributedError(f"the worker's copy of trial {tid} has no result.json")
        shutil.rmtree(dest, ignore_errors=True)  # an interrupted local attempt, never a recorded one
        os.rename(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return True


# -- the worker side -------------------------------------------------------------------
class _EventQueue:
    """Lives on the driver's node: trials on the workers put their events here, the
    driver drains them into the job's EventLog. Counts the attempts of each trial."""

    def __init__(self):
        self.items: list[tuple[str, dict]] = []
        self.attempts: dict[str, int] = {}

    def start(self, trial: str) -> int:
        self.attempts[trial] = self.attempts.get(trial, 0) + 1
        return self.attempts[trial]

    def put(self, kind: str, data: dict) -> None:
        self.items.append((kind, data))

    def drain(self) -> list[tuple[str, dict]]:
        out, self.items = self.items, []
        return out


_BACKENDS: dict = {}  # per worker process: one backend per (recipe, shape)


def _worker_backend(recipe: str | None, vcpus: int, memory_mib: int, image_key: str | None):
    from images.recipe import load_recipe
    from sandbox.factory import backend_for
    from sandbox.libvirt.backend import VMShape

    key = (recipe, vcpus, memory_mib)
    if key not in _BACKENDS:
        lr = load_recipe(recipe)
        if image_key and lr.key != image_key:
            raise DistributedError(f"on {socket.gethostname()} recipe {lr.name} is image {lr.key}, the job's is "
                                   f"{image_key}: this host's checkout differs from the submitting host's")
        _BACKENDS[key] = backend_for(recipe, VMShape(vcpus=vcpus, memory_mib=memory_mib), build_missing=False,
                                     log=lambda m: print(m, file=sys.stderr))
    return _BACKENDS[key]


def probe_worker(recipe: str | None, vcpus: int, memory_mib: int) -> dict:
    """Runs on a worker: its backend's facts (the image must be built there)."""
    be = _worker_backend(recipe, vcpus, memory_mib, None)
    return {"host": socket.gethostname(), "image": be.image.key, "kernel_release": be.image.lock.kernel_release,
            "accel": be.accel}


def run_trial_task(tc_json: str, setup: dict, agent_kwargs: dict | None, replay: bytes | None, events) -> bytes:
    """Runs on a worker: one trial into a local folder, returned as a tar (see pack_dir)."""
    import ray

    from sandbox.libvirt.backend import wait_closed

    from .models import TrialConfig
    from .trial import run_trial

    tc = TrialConfig.model_validate_json(tc_json)
    where = {"host": socket.gethostname(), "node": ray.util.get_node_ip_address()}
    attempt = ray.get(events.start.remote(tc.trial_id))
    if attempt > 1:
        events.put.remote("trial_retry", {"trial": tc.trial_id, "attempt": attempt, **where,
                                          "reason": "the worker of an earlier attempt was lost"})
    ray.get(events.put.remote("trial_start", {"trial": tc.trial_id, **where, "attempt": attempt}))

    def forward(kind: str, data: dict) -> None:
        if kind != "trial_end":  # the driver announces it once the folder is in the job
            events.put.remote(kind, data)

    be = _worker_backend(setup["recipe"], setup["vcpus"], setup["memory_mib"], setup["image"])
    tmp = Path(tempfile.mkdtemp(prefix="schedcp-ray-"))
    try:
        if replay is not None:  # the recording a replay agent replays travels with the task
            unpack_dir(replay, tmp / "recorded")
            agent_kwargs = {**(agent_kwargs or {}), "trajectory": str(tmp / "recorded" / "trajectory.jsonl")}
        run_trial(tc, tmp / tc.trial_id, be, events=forward, agent_kwargs=agent_kwargs)
        wait_closed()
        return pack_dir(tmp / tc.trial_id)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- the driver side -------------------------------------------------------------------
def use_token_if_present() -> bool:
    """Ray's token authentication: a head started where a token exists (``ray
    get-auth-token --generate``) requires it, but a joining node or driver sends it only in
    ``RAY_AUTH_MODE=token``. Turn that on when this host has a token (``RAY_AUTH_TOKEN``,
    ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``) and the mode is not set."""
    if os.environ.get("RAY_AUTH_MODE"):
        return os.environ["RAY_AUTH_MODE"] == "token"
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    if os.environ.get("RAY_AUTH_TOKEN") or path.is_file():
        os.environ["RAY_AUTH_MODE"] = "token"
        return True
    return False


def _check_reachable(address: str) -> None:
    if address == "auto":
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise DistributedError(f"--ray {address!r}: give HOST:PORT of the Ray head (e.g. 10.0.0.1:6379) or auto")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise DistributedError(f"cannot reach the Ray head at {address} ({e.strerror or e}); start it there with "
                               "`ray start --head --port PORT --num-cpus 0`") from None


def _pack_replay(agent_kwargs: dict | None) -> bytes:
    src = (agent_kwargs or {}).get("trajectory") or os.environ.get("SCHEDCP_REPLAY")
    if not src or not Path(src).is_file():
        raise DistributedError("replay needs a recorded trajectory (SCHEDCP_REPLAY=PATH/trajectory.jsonl)")
    src = Path(src)
    with tempfile.TemporaryDirectory() as t:
        rec = Path(t) / "rec"
        if (src.parent / "files").is_dir():
            shutil.copytree(src.parent / "files", rec / "files")
        rec.mkdir(exist_ok=True)
        shutil.copy(src, rec / "trajectory.jsonl")
        return pack_dir(rec)


class RayRunner:
    """Runs a job's trials as Ray tasks (see the module's docstring). ``connect()`` joins
    the cluster and checks its workers; the instance is then ``run_job``'s runner, and
    ``job_facts`` stands in for a backend in ``create_job``."""

    def __init__(self, address: str, recipe: str | None = None, vcpus: int = 2, memory_mib: int = 4096,
                 log=lambda m: print(m, file=sys.stderr), task=None):
        self.address, self.recipe, self.vcpus, self.memory_mib, self.log = address, recipe, vcpus, memory_mib, log
        self.task = task or run_trial_task  # what runs on the worker (tests give a VM-less one)
        self.job_facts = None
        self.slots = 0

    def connect(self, workloads: list[str]) -> "RayRunner":
        use_token_if_present()  # before Ray is imported: it reads the mode once
        ray = require_ray()
        from images.recipe import load_recipe

        from .workload import load_workload

        _check_reachable(self.address)
        if not ray.is_initialized():
            try:
                ray.init(address=self.address, logging_level="WARNING", log_to_driver=False,
                         configure_logging=True)
            except (ConnectionError, RuntimeError) as e:
                raise DistributedError(f"cannot join the Ray cluster at {self.address}: {e}") from None
        total = ray.cluster_resources()
        self.slots = int(total.get(VM_SLOTS, 0))
        if not self.slots:
            raise DistributedError(f"no host of the Ray cluster at {self.address} advertises {VM_SLOTS}: run "
                                   f"`schedcp worker start --address {self.address}` on each VM host")
        if any(GPU_SLOTS in trial_resources(load_workload(w).spec) for w in workloads) and not total.get(GPU_SLOTS):
            raise DistributedError(f"a workload needs a GPU and no host of the cluster advertises {GPU_SLOTS} "
                                   "(schedcp worker start --gpu-slots N)")
        # every worker host must have the job's image; its facts go into job.json
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        probe = ray.remote(probe_worker)
        nodes = [n for n in ray.nodes() if n["Alive"] and n["Resources"].get(VM_SLOTS)]
        refs = {n["NodeManagerAddress"]: probe.options(
            num_cpus=0, max_retries=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(
            self.recipe, self.vcpus, self.memory_mib) for n in nodes}
        facts, problems = [], []
        for addr, ref in refs.items():
            try:
                facts.append(ray.get(ref, timeout=600))
            except Exception as e:  # a RayTaskError wraps the worker's one-line reason
                problems.append(f"{addr}: {_one_line(e)}")
        for p in problems:
            self.log(f"schedcp: warning: Ray worker {p}")
        if not facts:
            raise DistributedError("no Ray worker can run trials: " + "; ".join(problems))
        want = load_recipe(self.recipe).key
        if facts[0]["image"] != want:
            raise DistributedError(f"the workers' image {facts[0]['image']} is not this checkout's {want}")
        f = facts[0]
        self.job_facts = SimpleNamespace(image=SimpleNamespace(key=f["image"], lock=SimpleNamespace(
            kernel_release=f["kernel_release"])), accel=f["accel"])
        self.log(f"schedcp: Ray cluster at {self.address}: {self.slots} {VM_SLOTS} on "
                 + ", ".join(sorted(x["host"] + f" ({x['accel']})" for x in facts)))
        return self

    def __call__(self, d: Path, cfg, todo: list, events, agent_kwargs: dict | None) -> None:
        # Ray prints its own notes (a lost worker, a retry) on sys.stdout: send them to
        # stderr, so that stdout stays the job's display (--display jsonl is parsed)
        with contextlib.redirect_stdout(sys.stderr):
            self._run(d, cfg, todo, events, agent_kwargs)

    def _run(self, d: Path, cfg, todo: list, events, agent_kwargs: dict | None) -> None:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from .job import stop_requested, trial_config
        from .trial import read_result
        from .workload import load_workload

        me = ray.get_runtime_context().get_node_id()
        queue = ray.remote(_EventQueue).options(
            num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(me, soft=False)).remote()
        task = ray.remote(self.task)
        setup = {"recipe": self.recipe, "vcpus": self.vcpus, "memory_mib": self.memory_mib,
                 "image": self.job_facts.image.key if self.job_facts else None}
        replay = _pack_replay(agent_kwargs) if cfg.agent == "replay" else None
        if replay is not None:
            agent_kwargs = {k: v for k, v in (agent_kwargs or {}).items() if k != "trajectory"}
        waiting, running = list(todo), {}
        hosts: dict[str, str] = {}

        def drain() -> None:
            for kind, data in ray.get(queue.drain.remote()):
                if kind == "trial_start":
                    hosts[data["trial"]] = data["host"]
                events(kind, data)

        limit = max(1, cfg.parallel)
        while waiting or running:
            while waiting and len(running) < limit:
                tid, wl, k = waiting.pop(0)
                if stop_requested(d):
                    events("trial_skip", {"trial": tid, "reason": "job stop requested"})
                    continue
                tc = trial_config(cfg, tid, wl, k)
                ref = task.options(num_cpus=0, resources=trial_resources(load_workload(wl).spec),
                                   max_retries=MAX_RETRIES, retry_exceptions=False).remote(
                    tc.model_dump_json(), setup, agent_kwargs, replay, queue)
                running[ref] = tid
            if not running:
                break
            done, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
            drain()
            for ref in done:
                tid = running.pop(ref)
                try:
                    blob = ray.get(ref)
                except ray.exceptions.RayError as e:  # lost workers past the retries, or no image there
                    events("trial_error", {"trial": tid, "error": _one_line(e)})
                    continue
                if not unpack_trial(blob, d, tid):
                    events("trial_duplicate", {"trial": tid, "reason": "already recorded: this result is ignored"})
                    continue
                r = read_result(d / tid)
                events("trial_end", {"trial": tid, "status": r.status, "failure_kind": r.failure_kind,
                                     "ratio": r.improvement.get("ratio") if r.improvement else None,
                                     **({"reason": r.failure} if r.status == "skipped" else {}),
                                     "host": hosts.get(tid)})
        drain()
        ray.kill(queue)


def _one_line(e: BaseException) -> str:
    """The last meaningful line of an error (a RayTaskError carries the remote traceback)."""
    cause = getattr(e, "cause", None)
    if cause is not None and not isinstance(cause, type(e)):
        return f"{type(cause).__name__}: {cause}".splitlines()[0]
    lines = [x.strip() for x in str(e).splitlines() if x.strip()]
    return lines[-1] if lines else type(e).__name__


# -- worker start ------------------------------------------------------------------------
def ensure_libvirtd(wait_s: float = 10.0) -> None:
    """libvirtd answers, or is started like `make setup` does (no systemd)."""
    from sandbox.base import SandboxError
    from sandbox.libvirt import prereqs

    try:
        prereqs.connect().close()
        return
    except SandboxError:
        pass
    for daemon in ("virtlogd", "libvirtd"):
        if subprocess.run(["pgrep", "-x", daemon], capture_output=True).returncode != 0:
            try:
                subprocess.run([daemon, "-d"], check=True, capture_output=True)
            except (OSError, subprocess.CalledProcessError) as e:
                raise DistributedError(f"cannot start {daemon}: {e} (run `make setup` on this host)") from None
    prereqs.connect(wait_s=wait_s).close()


def check_image(recipe: str | None) -> str:
    """The recipe's image is built here and every artefact matches its sha256; returns its key."""
    from images.recipe import load_recipe
    from images.store import find_image

    lr = load_recipe(recipe)
    image = find_image(lr.key)
    if image is None:
        raise DistributedError(f"image {lr.key} (recipe {lr.name}) is not built on this host: "
                               f"run `schedcp image build {lr.name}`")
    bad = image.verify(full=True)
    if bad:
        raise DistributedError(f"image {lr.key} is corrupted ({', '.join(bad)} differ from image.lock.json): "
                               f"rebuild it with `schedcp image build --force {lr.name}`")
    return lr.key


def ray_start_command(address: str, vm_slots: int, gpu_slots: int = 0, node_ip: str | None = None,
                      object_store_memory: int | None = None, block: bool = False) -> list[str]:
    ray_bin = Path(sys.executable).with_name("ray")
    cmd = [str(ray_bin) if ray_bin.is_file() else (shutil.which("ray") or "ray"), "start", "--address", address,
           "--num-cpus", "0",
           "--resources", json.dumps({VM_SLOTS: vm_slots, **({GPU_SLOTS: gpu_slots} if gpu_slots else {})}),
           "--disable-usage-stats"]
    if node_ip:
        cmd += ["--node-ip-address", node_ip]
    if object_store_memory:
        cmd += ["--object-store-memory", str(object_store_memory)]
    if block:
        cmd.append("--block")
    return cmd


def start_worker(address: str, vm_slots: int, gpu_slots: int = 0, recipe: str | None = None,
                 node_ip: str | None = None, object_store_memory: int | None = None, block: bool = False,
                 log=lambda m: print(m, file=sys.stderr)) -> list[str]:
    """Prepare this host and return the ``ray start`` command that joins it to the cluster."""
    if vm_slots < 1:
        raise DistributedError("--vm-slots must be at least 1")
    require_ray()
    _check_reachable(address)
    use_token_if_present()  # inherited by `ray start`
    ensure_libvirtd()
    t = time.monotonic()
    key = check_image(recipe)
    log(f"schedcp: libvirtd up; image {key} verified ({time.monotonic() - t:.1f} s); joining {address} with "
        f"{vm_slots} {VM_SLOTS}" + (f", {gpu_slots} {GPU_SLOTS}" if gpu_slots else ""))
    return ray_start_command(address, vm_slots, gpu_slots, node_ip, object_store_memory, block)
