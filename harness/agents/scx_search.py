"""`scx-search`: a real non-LLM tuner. Tries the default configuration, each prebuilt
sched_ext example scheduler, and a few sysctl presets; measures each with short trial
runs of the workload; keeps the best. One candidate counts as one step of the budget."""

from __future__ import annotations

import statistics

from sandbox.guest import SchedulerError, list_schedulers, start_scheduler, stop_scheduler

from .. import fmt
from ..limits import LimitExceeded
from .base import Agent, AgentContext

# Schedulers that suit a general-purpose machine; scx_cpu0 (everything on CPU 0) and
# scx_pair (needs pairs of cores in a cgroup) are demos and are not candidates.
SCHEDULERS = ["scx_simple", "scx_central", "scx_flatcg", "scx_qmap"]
# Keys are sysctl names, or absolute paths of kernel knob files (EEVDF's base slice and
# migration cost live in debugfs since 5.13, not in sysctl).
SYSCTL_PRESETS = {
    "latency": {"kernel.sched_autogroup_enabled": "0", "/sys/kernel/debug/sched/base_slice_ns": "1000000"},
    "throughput": {"/sys/kernel/debug/sched/base_slice_ns": "6000000",
                   "/sys/kernel/debug/sched/migration_cost_ns": "5000000"},
}


class ScxSearch(Agent):
    name = "scx-search"

    def __init__(self, schedulers: list[str] | None = None, presets: dict | None = None, runs_per_candidate: int = 2):
        self.schedulers = SCHEDULERS if schedulers is None else schedulers
        self.presets = SYSCTL_PRESETS if presets is None else presets
        self.runs = runs_per_candidate

    def _score(self, ctx: AgentContext) -> float | None:
        vals = []
        for _ in range(self.runs):
            m = ctx.trial_run()
            if "error" in m:
                return None
            vals.append(m[ctx.workload.spec.primary.metric])
        return statistics.median(vals)

    def _sysctl_set(self, ctx: AgentContext, values: dict) -> dict:
        """Apply a preset; returns the previous values (to undo it)."""
        old = {}
        for k, v in values.items():
            get, put = (f"cat {k}", f"echo {v} > {k}") if k.startswith("/") else (f"sysctl -n {k}", f"sysctl -w {k}={v}")
            r = ctx.run(get)
            if r["returncode"] == 0:
                old[k] = r["stdout"].strip()
                ctx.run(put)
        return old

    def run(self, ctx: AgentContext) -> None:
        lower = ctx.workload.spec.primary.direction == "lower"
        better = (lambda a, b: a < b) if lower else (lambda a, b: a > b)
        available = set(list_schedulers(ctx.sandbox))
        candidates = [("default", None)] + [("sched", s) for s in self.schedulers if s in available] \
            + [("sysctl", p) for p in self.presets]
        best, best_score, scores = ("default", None), None, {}
        try:
            for kind, what in candidates:
                ctx.budget.check()
                ctx.budget.add_step()
                label = f"{kind}:{what}" if what else kind
                old = {}
                try:
                    if kind == "sched":
                        start_scheduler(ctx.sandbox, what)
                    elif kind == "sysctl":
                        old = self._sysctl_set(ctx, self.presets[what])
                    score = self._score(ctx)
                except SchedulerError as e:
                    ctx.trajectory.log("message", role="agent", text=f"{label}: cannot start: {e}")
                    score = None
                finally:
                    if kind == "sched":
                        try:
                            stop_scheduler(ctx.sandbox)
                        except SchedulerError:
                            pass
                    elif kind == "sysctl":
                        self._sysctl_set(ctx, old)
                scores[label] = score
                ctx.trajectory.log("message", role="agent", text=f"candidate {label}: {fmt.metric(score, none='no score')}")
                if score is not None and (best_score is None or better(score, best_score)):
                    best, best_score = (kind, what), score
        except LimitExceeded as e:
            ctx.trajectory.log("limit", kind=e.kind, value=e.value, limit=e.limit)
            ctx.notes["limit"] = e
        ctx.notes["scores"] = scores
        kind, what = best
        ctx.trajectory.log("message", role="agent", text=f"keeping {kind}:{what} (score {fmt.metric(best_score)})")
        if kind == "sched":
            start_scheduler(ctx.sandbox, what)
        elif kind == "sysctl":
            self._sysctl_set(ctx, self.presets[what])
        if "limit" in ctx.notes:
            raise ctx.notes.pop("limit")
