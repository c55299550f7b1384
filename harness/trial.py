"""One trial: an agent tunes one workload in a fresh VM; the harness measures the result.

Phases (each timed in ``result.json``):

1. ``reset``: two fresh sandboxes from the same saved state: *tuned* (the agent's) and
   *baseline* (never touched by the agent). Both check the kernel pin.
2. ``setup``: the workload folder is installed and set up in both.
3. ``agent``: the agent works in *tuned*, within its budget. A budget hit stops it and
   the trial is still measured.
4. ``measure``: the harness runs the workload in *baseline* and *tuned* alternately
   (B T B T ..., so slow drift affects both alike), warm-up rounds dropped. It checks
   that a scheduler the agent left attached is still attached afterwards.
5. ``stats``: per-metric summaries, the oriented improvement ratio of the primary metric
   with a bootstrap 95 % CI and a Mann-Whitney p-value, SLO checks.

Whatever happens, ``result.json`` is written last (atomically) with the failure kind; a
trial folder without it is re-run on resume.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from sandbox.base import GuestCrashed, SandboxError
from sandbox.guest import sched_ext_dmesg, sched_ext_state

from . import bench
from .agents import AgentContext, Trajectory, make_agent
from .agents.base import AgentInfraError
from .limits import BudgetTracker, LimitExceeded
from .models import MetricStats, TrialConfig, TrialResult
from .prompt import instruction
from .stats import compare, slo_met, summarize_runs
from .workload import WorkloadError, WorkloadSkipped, backend_refusal, load_workload

Events = Callable[[str, dict], None]
LIVE_FILE = "live.json"  # present while the trial's sandboxes run


def _write_json(path: Path, data: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(data)
    os.replace(tmp, path)


def _energy_counter() -> tuple[float | None, str]:
    p = Path("/sys/class/powercap/intel-rapl:0/energy_uj")
    try:
        return int(p.read_text()) / 1e6, ""
    except OSError as e:
        return None, f"RAPL not available on this host ({p}: {e.strerror or e})"


# sysctls that change by themselves (counters, random ids, memory-dependent sizes)
_VOLATILE = re.compile(r"^(kernel\.ns_last_pid|kernel\.random\.|kernel\.pty\.nr|vm\.user_reserve_kbytes"
                       r"|vm\.admin_reserve_kbytes|kernel\.perf_event_max_sample_rate)")


def _sysctls(sb) -> dict[str, str]:
    r = sb.run("sysctl -a 2>/dev/null | grep -E '^(kernel|vm|net\\.core)\\.' ", timeout=60, max_output=4 << 20)
    # EEVDF's knobs live in debugfs (since 5.13), not in sysctl: record them too
    d = sb.run("for f in base_slice_ns migration_cost_ns nr_migrate features latency_warn_ms latency_warn_once "
               "tunable_scaling preempt; do p=/sys/kernel/debug/sched/$f; [ -f $p ] && "
               "echo \"$p = $(tr '\\n' ' ' < $p)\"; done", timeout=60)
    out = {}
    for line in r.stdout.splitlines() + d.stdout.splitlines():
        k, _, v = line.partition(" = ")
        if not _VOLATILE.match(k.strip()):
            out[k.strip()] = v.strip()
    return out


def run_trial(cfg: TrialConfig, trial_dir: Path, backend, events: Events = lambda k, d: None,
              agent_kwargs: dict | None = None, cores: tuple[int, ...] | None = None) -> TrialResult:
    """Run one trial. ``cores``: host cores this trial's VMs run on (see job.run_job); None
    leaves placement to the host's scheduler."""
    trial_dir.mkdir(parents=True, exist_ok=True)
    (trial_dir / "config.json").write_text(cfg.model_dump_json(indent=2))
    def progress(rec: dict) -> None:  # the agent's steps, as they happen, for the display
        kind = rec["type"]
        if kind == "message" and rec.get("role") != "assistant":
            text = rec.get("text", "")
        elif kind == "tool_call":
            text = f"{rec['name']} {json.dumps(rec.get('input'))[:120]}"
        elif kind == "trial_run":
            text = f"trial run {rec.get('metrics') or rec.get('error')}"
        elif kind == "goal":
            text = f"declared goal {rec['declared']['metric']} ({rec['declared']['direction']})"
        elif kind == "candidate":  # the classic tuners (harness/agents/tuners.py)
            text = f"candidate {rec['label']}: {rec['score']}" + (f" ({'; '.join(rec['errors'])})" if rec["errors"] else "")
        elif kind == "mcp_ready":
            text = f"MCP server ready: {rec['url']}"
        elif kind == "malformed_tool_call":
            text = f"malformed tool call {rec.get('name')!r}: {rec.get('reason')}"
        elif kind in ("api_error", "limit", "failure"):
            text = f"{kind} " + json.dumps({k: v for k, v in rec.items() if k not in ("t", "type")})
        else:
            return
        u = tracker.usage
        events("agent", {"trial": cfg.trial_id, "text": text, "steps": u.steps,
                         "tokens": u.input_tokens + u.output_tokens,
                         "cost_usd": None if u.cost_usd is None else round(u.cost_usd, 4)})

    traj = Trajectory(trial_dir / "trajectory.jsonl", on_log=progress)
    res = TrialResult(trial_id=cfg.trial_id, workload=cfg.workload, agent=cfg.agent, model=cfg.model,
                      backend=cfg.backend, attempt=cfg.attempt, interface=cfg.interface, slo_hint=cfg.slo_hint, image=backend.image.key)
    tracker = BudgetTracker(cfg.budget, cfg.model)
    sbs: dict[str, object] = {}
    t_trial = time.monotonic()

    @contextlib.contextmanager
    def phase(name: str):
        events("phase", {"trial": cfg.trial_id, "phase": name})
        traj.log("phase", phase=name)
        t = time.monotonic()
        try:
            yield
        finally:
            res.phases_s[name] = round(time.monotonic() - t, 3)

    def fail(kind: str, msg: str) -> None:
        if res.failure_kind == "none":
            res.failure_kind, res.failure = kind, msg
        traj.log("failure", kind=kind, message=msg)

    try:
        wl = load_workload(cfg.workload)
        spec = wl.spec
        why = backend_refusal(spec, backend)
        if why:
            raise WorkloadSkipped(why)
        res.primary_metric, res.direction = spec.primary.metric, spec.primary.direction
        with phase("reset"):
            # both restores at once: most of a restore is libvirt and QEMU waiting
            with ThreadPoolExecutor(2) as pool:
                futs = {role: pool.submit(backend.open, job=cfg.job_id or "trial",
                                            trial=cfg.trial_id + suffix, cores=cores)
                        for role, suffix in (("tuned", ""), ("baseline", "-baseline"))}
                errors = []
                for role, fut in futs.items():
                    try:
                        sbs[role] = fut.result()
                    except Exception as e:  # keep the one that opened, so that it is closed
                        errors.append(e)
                if errors:
                    raise errors[0]
            res.kernel_release = sbs["tuned"].relay.guest_release
            # where the tuned guest's console is while it runs (the TUI tails it); the
            # trial folder gets its copy, console.log, when the sandbox closes
            (trial_dir / LIVE_FILE).write_text(json.dumps({"console": str(sbs["tuned"].console_path)}))
            res.host_cores = list(cores) if cores else None
        tuned, base = sbs["tuned"], sbs["baseline"]
        with phase("setup"):
            bench.setup(tuned, wl, cfg.size, hide_goal=not cfg.slo_hint)
            bench.setup(base, wl, cfg.size)
        default_sysctls = _sysctls(base)

        def trial_run() -> dict:
            try:
                r = bench.run_once(tuned, wl, cfg.size)
                traj.log("trial_run", metrics=r.metrics, duration_s=round(r.duration_s, 4))
                return r.metrics
            except WorkloadError as e:
                traj.log("trial_run", error=str(e))
                return {"error": str(e)}

        text = instruction(wl, res.kernel_release, backend.shape.vcpus, backend.shape.memory_mib,
                           cfg.slo_hint, cfg.budget)
        traj.log("instruction", text=text)
        ctx = AgentContext(sandbox=tuned, workload=wl, instruction=text, budget=tracker, trajectory=traj,
                           files_dir=trial_dir / "files", model=cfg.model, trial_run=trial_run,
                           slo_hint=cfg.slo_hint, interface=cfg.interface, trial_dir=trial_dir)
        cpu0 = tuned.qemu_cpu_s()
        hcpu0 = time.thread_time()
        e0, enote = _energy_counter()
        with phase("agent"):
            try:
                make_agent(cfg.agent, **(agent_kwargs or {})).run(ctx)
            except LimitExceeded as e:
                res.limit_hit = e.kind
                fail("budget_exceeded", str(e))
            except AgentInfraError as e:
                fail("infra_error", str(e))
            except (GuestCrashed, SandboxError):
                raise
            except Exception as e:  # the agent's own bug or a bad tool call sequence
                fail("agent_error", f"{type(e).__name__}: {e}")
                traj.log("traceback", text=traceback.format_exc())
        tracker.usage.wall_s = res.phases_s.get("agent", 0.0)
        tracker.usage.host_cpu_s = round(time.thread_time() - hcpu0, 3)
        cpu1 = tuned.qemu_cpu_s()
        e1, _ = _energy_counter()
        tracker.usage.guest_cpu_s = round(cpu1 - cpu0, 3) if cpu0 is not None and cpu1 is not None else None
        tracker.usage.energy_j = round(e1 - e0, 3) if e0 is not None and e1 is not None else None
        tracker.usage.energy_note = enote
        res.files_written = ctx.files_written
        tools = ctx.notes.get("tools")
        res.tool_calls = tools.calls if tools is not None else 0
        res.malformed_tool_calls = ctx.notes.get("malformed_tool_calls", 0) + (tools.malformed if tools is not None else 0)
        if not cfg.slo_hint:
            res.goal = (tools.goal if tools is not None and tools.goal is not None
                        else {"declared": None, "step": None, "correct": False, "metric_ok": False,
                              "direction_ok": False, "truth": spec.goal.model_dump(include={"metric", "direction"})})
        tuned.check_alive()
        st = sched_ext_state(tuned)
        changed = {k: v for k, v in _sysctls(tuned).items() if default_sysctls.get(k) != v}
        res.tuned_config = {"sched_ext": {"state": st.state, "ops": st.ops}, "sysctl_changed": changed}
        traj.log("tuned_config", **res.tuned_config)

        with phase("measure"):
            for i in range(cfg.warmup + cfg.repeat):
                warm = i < cfg.warmup
                for role in ("baseline", "tuned"):
                    r = bench.run_once(sbs[role], wl, cfg.size, index=i, warmup=warm)
                    traj.log("measure", role=role, index=i, warmup=warm, metrics=r.metrics,
                             duration_s=round(r.duration_s, 4))
                    events("measure", {"trial": cfg.trial_id, "role": role, "index": i, "warmup": warm,
                                       "value": r.metrics[spec.primary.metric]})
                    if not warm:
                        (res.baseline_runs if role == "baseline" else res.tuned_runs).append(r.metrics)
            if st.enabled:
                end = sched_ext_state(tuned)
                res.scheduler_in_place = end.enabled and end.ops == st.ops
                if not res.scheduler_in_place:
                    res.scheduler_exit = sched_ext_dmesg(tuned)
                    traj.log("message", role="harness", text=f"scheduler {st.ops} was not in place after measuring "
                                                             f"(now {end.state} {end.ops}); kernel: {res.scheduler_exit}")
        with phase("stats"):
            bsum, tsum = summarize_runs(res.baseline_runs), summarize_runs(res.tuned_runs)
            res.summary = {m: MetricStats(baseline=bsum[m], tuned=tsum[m]) for m in bsum}
            pm = spec.primary.metric
            b = [r[pm] for r in res.baseline_runs]
            t = [r[pm] for r in res.tuned_runs]
            res.improvement = compare(b, t, spec.primary.direction)
            bmed, tmed = res.summary[pm].baseline["median"], res.summary[pm].tuned["median"]
            res.slo = {
                # the absolute part of an SLO applies to the baseline; the relative part
                # is by definition met by it
                "baseline_met": slo_met(bmed, bmed, spec.primary.direction, spec.slo.absolute, None),
                "tuned_met": slo_met(tmed, bmed, spec.primary.direction, spec.slo.absolute, spec.slo.relative),
                "slo": spec.slo.model_dump(),
            }
    except WorkloadSkipped as e:  # refused before any VM starts: no failure kind, status skipped
        res.failure = str(e)
        traj.log("skipped", reason=str(e))
    except GuestCrashed as e:
        fail("sandbox_crash", str(e))
    except (SandboxError, WorkloadError) as e:
        fail("infra_error", f"{type(e).__name__}: {e}")
    finally:
        (trial_dir / LIVE_FILE).unlink(missing_ok=True)
        for role, sb in sbs.items():
            with contextlib.suppress(Exception):
                sb.close(keep_console=trial_dir / ("console.log" if role == "tuned" else f"console-{role}.log"),
                         wait=False)
        res.usage = tracker.usage
        res.status = ("skipped" if res.failure and res.failure_kind == "none" and not res.improvement
                      else "done" if res.failure_kind in ("none", "budget_exceeded") and res.improvement else "failed")
        res.phases_s["total"] = round(time.monotonic() - t_trial, 3)
        _write_json(trial_dir / "result.json", res.model_dump_json(indent=2))
        events("trial_end", {"trial": cfg.trial_id, "status": res.status, "failure_kind": res.failure_kind,
                             "ratio": res.improvement.get("ratio") if res.improvement else None,
                             **({"reason": res.failure} if res.status == "skipped" else {})})
    return res


def read_result(trial_dir: Path) -> TrialResult | None:
    p = trial_dir / "result.json"
    if not p.is_file():
        return None
    try:
        return TrialResult.model_validate(json.loads(p.read_text()))
    except (ValueError, OSError):
        return None
