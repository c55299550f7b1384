"""One trial: an agent tunes one workload in a fresh VM; the harness measures the result.

:class:`Trial` has one method per phase (each timed in ``result.json``):

1. ``reset``: a fresh sandbox from the backend's saved state (kernel pin checked).
2. ``setup``: the workload folder is installed and set up; that VM is then saved to disk
   as it is (the *baseline* checkpoint), and the agent's VM is restored from it, so the
   baseline and tuned states share the guest's history up to the agent's start.
3. ``agent``: the agent works in its VM, within its budget (the wall-time budget starts
   here). A budget hit stops it and the trial is still measured. What it left in place
   (scheduler, sysctls) is recorded, then its VM is saved too (the *tuned* checkpoint).
4. ``measure``: each round measures both checkpoints, each in a **fresh VM instance**
   restored for that one run, in balanced order (``BT TB TB BT``..., seeded; see
   :mod:`harness.scoring`), each instance warmed by the same unmeasured run(s) first.
   Under TCG every restored instance has its own speed (FACTS: up to ~12 % apart); with
   one instance per run that luck becomes run-to-run noise that the CI carries, instead
   of a steady difference between the two sides. Every run's state and instance are in
   ``measurements``. A workload that fails only in the tuned VM is the agent's failure
   (``workload_broken``).
5. ``stats``: per-metric summaries, the paired improvement ratio of the primary metric with
   its 95 % CI, the verdict and the SLO verdict (:mod:`harness.scoring`).

Whatever happens, ``result.json`` is written last (atomically) with the failure kind; a
trial folder without it, or with ``harness_error``, is re-run on resume.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import traceback
import hashlib
from pathlib import Path
from typing import Callable

from sandbox.base import GuestCrashed, SandboxError
from sandbox.guest import sched_ext_dmesg, sched_ext_state

from . import bench, energy, gpu, guest_state, scoring
from .agents import AgentContext, Trajectory, make_agent
from .agents.base import AgentInfraError
from .limits import BudgetTracker, LimitExceeded
from .models import MetricStats, TrialConfig, TrialResult
from .prompt import instruction
from .stats import median_ci, paired_compare, slo_met, summarize_runs
from .steps import step_text
from .workload import WorkloadError, WorkloadSkipped, backend_refusal, load_workload

Events = Callable[[str, dict], None]
LIVE_FILE = "live.json"  # present while the trial's sandboxes run


def _write_json(path: Path, data: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(data)
    os.replace(tmp, path)


class TrialEnded(Exception):
    """Nothing is left to measure for (e.g. an MCP client that went away before ``finish``):
    the failure is recorded, the VMs are closed at once."""


class WorkloadBroken(Exception):
    """The workload fails in the tuned VM but runs in the baseline one: the agent's doing."""


def order_seed(trial_id: str) -> int:
    """The seed of a trial's round order: fixed by its id (a re-run keeps its order)."""
    return int(hashlib.sha256(trial_id.encode()).hexdigest()[:8], 16)


class Trial:
    """One trial in Harbor's shape: :meth:`run` calls one method per phase."""

    def __init__(self, cfg: TrialConfig, trial_dir: Path, backend, events: Events = lambda k, d: None,
                 agent_kwargs: dict | None = None, cores: tuple[int, ...] | None = None):
        self.cfg, self.dir, self.backend, self.events = cfg, trial_dir, backend, events
        self.agent_kwargs, self.cores = agent_kwargs or {}, cores
        trial_dir.mkdir(parents=True, exist_ok=True)
        (trial_dir / "config.json").write_text(cfg.model_dump_json(indent=2))
        self.traj = Trajectory(trial_dir / "trajectory.jsonl", on_log=self._progress)
        self.res = TrialResult(trial_id=cfg.trial_id, workload=cfg.workload, agent=cfg.agent, model=cfg.model,
                               backend=cfg.backend, attempt=cfg.attempt, interface=cfg.interface,
                               slo_hint=cfg.slo_hint, image=backend.image.key)
        self.tracker = BudgetTracker(cfg.budget, cfg.model)
        self.sbs: dict[str, object] = {}
        self.ckpts: dict[str, object] = {}
        self.wl = None
        self.default_sysctls: dict[str, str] = {}
        self.scheduler = None  # the sched_ext state the agent left (sandbox.guest.ScxState)

    # -- the trial -------------------------------------------------------------------------
    def run(self) -> TrialResult:
        t_trial = time.monotonic()
        try:
            self.load()
            with self._phase("reset"):
                self.reset()
            with self._phase("setup"):
                self.setup()
            with self._phase("agent"):
                self.run_agent()
            self.inspect()
            with self._phase("measure"):
                self.measure()
            with self._phase("stats"):
                self.score()
        except WorkloadSkipped as e:  # refused before any VM starts: no failure kind, status skipped
            self.res.failure = str(e)
            self.traj.log("skipped", reason=str(e))
        except TrialEnded:
            pass
        except WorkloadBroken as e:
            self._fail("workload_broken", str(e))
        except GuestCrashed as e:
            self._fail("sandbox_crash", str(e))
        except (SandboxError, WorkloadError) as e:
            self._fail("infra_error", f"{type(e).__name__}: {e}")
        except Exception as e:  # a bug of the harness: its own kind, the traceback kept, re-run on resume
            tb = traceback.format_exc()
            (self.dir / "traceback.txt").write_text(tb)
            self._fail("harness_error", f"{type(e).__name__}: {e} (traceback.txt)")
        finally:
            self.finish(t_trial)
        return self.res

    # -- phases ------------------------------------------------------------------------------
    def load(self) -> None:
        self.wl = load_workload(self.cfg.workload)
        why = backend_refusal(self.wl.spec, self.backend)
        if why:
            raise WorkloadSkipped(why)
        self.res.primary_metric, self.res.direction = self.wl.spec.primary.metric, self.wl.spec.primary.direction
        if not self.backend.shape.gpus:  # one stated reason, never zeros
            self.res.gpu = {"note": "no GPU passed through to this trial's VMs: no GPU telemetry"}

    def reset(self) -> None:
        cfg = self.cfg
        origin = self.sbs["origin"] = self.backend.open(job=cfg.job_id or "trial", trial=cfg.trial_id, cores=self.cores)
        self.res.kernel_release = origin.relay.guest_release
        self.res.host_cores = list(self.cores) if self.cores else None

    def setup(self) -> None:
        """Set the workload up once, save that VM as the baseline checkpoint, and restore
        the agent's VM from it: baseline and tuned states then share the guest's whole
        history up to the agent's start (its memory layout, page cache, uptime), so no
        difference from setting up two guests can pass for an effect."""
        origin = self.sbs["origin"]
        # the goal-free copy of the spec when the goal is hidden: measuring reads no spec
        bench.setup(origin, self.wl, self.cfg.size, hide_goal=not self.cfg.slo_hint)
        self.default_sysctls = guest_state.sysctls(origin)
        self.ckpts["baseline"] = origin.checkpoint()
        tuned = self.sbs["tuned"] = self.backend.restore_checkpoint(self.ckpts["baseline"],
                                                                    label=f"{self.cfg.trial_id}/agent")
        # where the tuned guest's console is while it runs (the TUI tails it); the trial
        # folder gets its copy, console.log, when the sandbox closes
        (self.dir / LIVE_FILE).write_text(json.dumps({"console": str(tuned.console_path)}))

    def _trial_run(self) -> dict:
        """The agent's own run of the workload (its tool), in its VM."""
        try:
            r = bench.run_once(self.sbs["tuned"], self.wl, self.cfg.size)
            self.traj.log("trial_run", metrics=r.metrics, duration_s=round(r.duration_s, 4))
            return r.metrics
        except WorkloadError as e:
            self.traj.log("trial_run", error=str(e))
            return {"error": str(e)}

    def _trial_run_output(self) -> dict:
        """The agent's own run as the program's output (the goal hidden from it)."""
        r = bench.run_output(self.sbs["tuned"], self.wl, self.cfg.size)
        self.traj.log("trial_run", exit_code=r["exit_code"], duration_s=r["elapsed_s"], error=r.get("error"))
        return r

    def run_agent(self) -> None:
        cfg, res, tracker, tuned = self.cfg, self.res, self.tracker, self.sbs["tuned"]
        text = instruction(self.wl, res.kernel_release, self.backend.shape.vcpus, self.backend.shape.memory_mib,
                           cfg.slo_hint, cfg.budget)
        self.traj.log("instruction", text=text)
        ctx = AgentContext(sandbox=tuned, workload=self.wl, instruction=text, budget=tracker, trajectory=self.traj,
                           files_dir=self.dir / "files", model=cfg.model, trial_run=self._trial_run,
                           trial_run_output=self._trial_run_output,
                           slo_hint=cfg.slo_hint, interface=cfg.interface, trial_dir=self.dir)
        cpu0, hcpu0 = tuned.qemu_cpu_s(), time.thread_time()
        tracker.energy = energy.EnergyMeter.for_trial(tuned, len(self.backend.shape.gpus))
        tracker.start()
        t0 = time.monotonic()
        try:
            if cfg.budget.energy_j is not None and not tracker.energy.sources:
                # the job was created where energy could be measured (or resumed elsewhere)
                raise AgentInfraError("--max-energy-j cannot be enforced on this host: "
                                      + "; ".join(tracker.energy.notes.values()))
            make_agent(cfg.agent, **self.agent_kwargs).run(ctx)
        except LimitExceeded as e:
            res.limit_hit = e.kind
            self._fail("budget_exceeded", str(e))
        except AgentInfraError as e:
            self._fail("infra_error", str(e))
        except (GuestCrashed, SandboxError):
            raise
        except Exception as e:  # the agent's own bug or a bad tool call sequence
            self._fail("agent_error", f"{type(e).__name__}: {e}")
            self.traj.log("traceback", text=traceback.format_exc())
            if getattr(e, "ends_trial", False):  # nobody left to measure for
                raise TrialEnded(str(e)) from None
        finally:
            u = tracker.usage
            u.wall_s = round(time.monotonic() - t0, 3)
            u.host_cpu_s = round(time.thread_time() - hcpu0, 3)
            cpu1 = tuned.qemu_cpu_s()
            u.guest_cpu_s = round(cpu1 - cpu0, 3) if cpu0 is not None and cpu1 is not None else None
            tracker.read_energy()  # CPU and GPU energy of the agent phase, each with its source
            res.files_written = ctx.files_written
            tools = ctx.notes.get("tools")
            res.tool_calls = tools.calls if tools is not None else 0
            res.malformed_tool_calls = (ctx.notes.get("malformed_tool_calls", 0)
                                        + (tools.malformed if tools is not None else 0))
            if not cfg.slo_hint:
                res.goal = (tools.goal if tools is not None and tools.goal is not None
                            else {"declared": None, "step": None, "correct": False, "metric_ok": False,
                                  "direction_ok": False, "reason": "no goal was declared",
                                  "changes_before_declare": list(getattr(tools, "changes_before_declare", [])),
                                  "changes_before_declare_count": getattr(tools, "changes_count", 0),
                                  "truth": self.wl.spec.goal.model_dump(include={"metric", "direction"})})

    def inspect(self) -> None:
        """Record what the agent left in place, then save the tuned VM as it is."""
        tuned = self.sbs["tuned"]
        tuned.check_alive()
        self.scheduler = st = sched_ext_state(tuned)
        changed = {k: v for k, v in guest_state.sysctls(tuned).items() if self.default_sysctls.get(k) != v}
        self.res.tuned_config = {"sched_ext": {"state": st.state, "ops": st.ops}, "sysctl_changed": changed}
        self.traj.log("tuned_config", **self.res.tuned_config)
        self.ckpts["tuned"] = tuned.checkpoint()

    def measure(self) -> None:
        cfg, spec, res = self.cfg, self.wl.spec, self.res
        rounds = cfg.repeat if cfg.repeat is not None else spec.repetitions[cfg.size]
        warmup = cfg.warmup if cfg.warmup is not None else spec.warmup_runs
        res.order_seed = order_seed(cfg.trial_id)
        res.order = scoring.balanced_order(rounds, res.order_seed)
        self.traj.log("measure_plan", rounds=rounds, warmup=warmup, order=res.order, seed=res.order_seed)
        for i, pair in enumerate(res.order):
            for side in pair:
                role = "baseline" if side == "B" else "tuned"
                metrics = self._measure_one(role, i, warmup)
                (res.baseline_runs if role == "baseline" else res.tuned_runs).append(metrics)
        if self.scheduler is not None and self.scheduler.enabled and res.scheduler_in_place is None:
            res.scheduler_in_place = True

    def _measure_one(self, role: str, rnd: int, warmup: int) -> dict:
        """One measured run of ``role`` in a fresh instance of its checkpoint, after
        ``warmup`` unmeasured runs in that instance."""
        ckpt, spec = self.ckpts[role], self.wl.spec
        sb = self.backend.restore_checkpoint(ckpt, label=f"{self.cfg.trial_id}/{role}/r{rnd}")
        keep = None
        try:
            if role == "tuned" and self.scheduler is not None and self.scheduler.enabled:
                self._check_scheduler(sb, "after the restore")
            for w in range(warmup + 1):
                warm = w < warmup
                # with GPUs passed through: NVML sampled in the guest during the run (unverified)
                sampler = gpu.GuestSampler(sb).start() if self.backend.shape.gpus else None
                try:
                    r = bench.run_once(sb, self.wl, self.cfg.size, index=rnd, warmup=warm)
                except WorkloadError as e:
                    keep = self.dir / f"console-{role}-r{rnd}.log"
                    if role == "tuned":
                        self._blame(e)
                    raise
                rec = {"round": rnd, "role": role, "warmup": warm, "state": str(ckpt.state),
                       "instance": sb.instance_id, "restore_s": sb.meta.get("restore_s"),
                       "metrics": r.metrics, "duration_s": round(r.duration_s, 4)}
                if sampler is not None:
                    rec["gpu"] = sampler.stop()
                self.res.measurements.append(rec)
                self.traj.log("measure", **rec)
                self.events("measure", {"trial": self.cfg.trial_id, "role": role, "index": rnd, "warmup": warm,
                                        "instance": sb.instance_id, "value": r.metrics[spec.primary.metric]})
            if role == "tuned" and self.scheduler is not None and self.scheduler.enabled:
                self._check_scheduler(sb, "after measuring")
            return r.metrics
        except GuestCrashed:
            keep = self.dir / f"console-{role}-r{rnd}.log"
            raise
        finally:
            sb.close(keep_console=keep)

    def _check_scheduler(self, sb, when: str) -> None:
        if self.res.scheduler_in_place is False:
            return
        end = sched_ext_state(sb)
        if not (end.enabled and end.ops == self.scheduler.ops):
            self.res.scheduler_in_place = False
            self.res.scheduler_exit = sched_ext_dmesg(sb)
            self.traj.log("message", role="harness",
                          text=f"scheduler {self.scheduler.ops} was not in place {when} in {sb.instance_id} "
                               f"(now {end.state} {end.ops}); kernel: {self.res.scheduler_exit}")

    def _blame(self, err: WorkloadError) -> None:
        """The workload failed in a tuned instance: if it runs in a baseline instance, the
        agent's changes broke it (:class:`WorkloadBroken`); otherwise the error stands."""
        if not self.res.baseline_runs:
            sb = self.backend.restore_checkpoint(self.ckpts["baseline"], label=f"{self.cfg.trial_id}/blame")
            try:
                bench.run_once(sb, self.wl, self.cfg.size)
            except WorkloadError:
                return
            finally:
                sb.close()
        raise WorkloadBroken(f"the workload runs in the baseline VM but fails after the agent's changes: {err}")

    def score(self) -> None:
        res, spec = self.res, self.wl.spec
        bsum, tsum = summarize_runs(res.baseline_runs), summarize_runs(res.tuned_runs)
        res.summary = {m: MetricStats(baseline=bsum[m], tuned=tsum[m]) for m in bsum}
        pm, d = spec.primary.metric, spec.primary.direction
        b = [r[pm] for r in res.baseline_runs]
        t = [r[pm] for r in res.tuned_runs]
        res.improvement = paired_compare(b, t, d)
        res.verdict_detail = scoring.verdict(res.improvement["ratio"], res.improvement["ci95"], min(len(b), len(t)))
        res.verdict = res.verdict_detail["verdict"]
        bmed = res.summary[pm].baseline["median"]
        slo = scoring.slo_verdict(d, spec.slo.absolute, spec.slo.relative, res.improvement["ci95"], median_ci(t))
        # the absolute part of an SLO applies to the baseline too; the relative part is by
        # definition met by it
        res.slo = {**slo, "baseline_met": slo_met(bmed, bmed, d, spec.slo.absolute, None), "slo": spec.slo.model_dump()}
        if self.backend.shape.gpus:
            res.gpu = gpu.trial_summary(res.measurements)

    def finish(self, t_trial: float) -> None:
        res = self.res
        (self.dir / LIVE_FILE).unlink(missing_ok=True)
        for role in ("tuned", "origin"):  # the agent's VM first: it lives in the origin's folder
            sb = self.sbs.get(role)
            if sb is not None:
                with contextlib.suppress(Exception):
                    sb.close(keep_console=self.dir / ("console.log" if role == "tuned" else "console-setup.log"),
                             wait=role == "tuned")
        res.usage = self.tracker.usage
        res.status = ("skipped" if res.failure and res.failure_kind == "none" and not res.improvement
                      else "done" if res.failure_kind in ("none", "budget_exceeded") and res.improvement.get("ratio")
                      else "failed")
        res.phases_s["total"] = round(time.monotonic() - t_trial, 3)
        _write_json(self.dir / "result.json", res.model_dump_json(indent=2))
        if self.cfg.atif:  # from the files just written; an export that fails never fails the trial
            try:
                from .atif import write_trial

                write_trial(self.dir)
            except Exception as e:
                self.events("warning", {"trial": res.trial_id, "text": f"ATIF export failed: {type(e).__name__}: {e}"})
        self.events("trial_end", {"trial": res.trial_id, "status": res.status, "failure_kind": res.failure_kind,
                                  "ratio": res.improvement.get("ratio") if res.improvement else None,
                                  "ci95": res.improvement.get("ci95") if res.improvement else None,
                                  "verdict": res.verdict,
                                  **({"reason": res.failure} if res.status == "skipped" else {})})

    # -- helpers -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _phase(self, name: str):
        self.events("phase", {"trial": self.cfg.trial_id, "phase": name})
        self.traj.log("phase", phase=name)
        t = time.monotonic()
        try:
            yield
        finally:
            self.res.phases_s[name] = round(time.monotonic() - t, 3)

    def _fail(self, kind: str, msg: str) -> None:
        if self.res.failure_kind == "none":
            self.res.failure_kind, self.res.failure = kind, msg
        self.traj.log("failure", kind=kind, message=msg)

    def _progress(self, rec: dict) -> None:
        """The agent's steps, as they happen, for the display."""
        text = step_text(rec)
        if text is None:
            return
        u = self.tracker.usage
        self.events("agent", {"trial": self.cfg.trial_id, "text": text, "steps": u.steps,
                              "tokens": u.input_tokens + u.output_tokens,
                              "cost_usd": None if u.cost_usd is None else round(u.cost_usd, 4)})


def run_trial(cfg: TrialConfig, trial_dir: Path, backend, events: Events = lambda k, d: None,
              agent_kwargs: dict | None = None, cores: tuple[int, ...] | None = None) -> TrialResult:
    """Run one trial. ``cores``: host cores this trial's VMs run on (see job.run_job); None
    leaves placement to the host's scheduler."""
    return Trial(cfg, trial_dir, backend, events, agent_kwargs, cores).run()


def read_result(trial_dir: Path) -> TrialResult | None:
    p = trial_dir / "result.json"
    if not p.is_file():
        return None
    try:
        return TrialResult.model_validate(json.loads(p.read_text()))
    except (ValueError, OSError):
        return None
