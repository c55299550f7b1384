"""Classic autotuner baselines over the tuning space of :mod:`harness.tuning` (the Gym
environment's action spaces), measured by the same trial, budgets and statistics as the
LLM agents.

- ``optuna``: TPE (optuna's ``TPESampler``) over the parametric space (the EEVDF knobs);
  the first trial is the guest's defaults; one trial per budget step.
- ``bandit``: UCB1 over the discrete space (default, the prebuilt sched_ext schedulers,
  the sysctl presets); one pull (one run) per budget step; every arm is pulled once
  first; the index is ``mean ratio + c * sqrt(2 ln n / n_i)`` with the ratio taken to
  the first ``default`` pull, oriented so that > 1 is better (``c`` 0.1: rewards sit
  near 1 and differ by a few percent).
- ``random``: uniform samples of the ``dict`` space (a discrete choice plus knob values);
  the first candidate is the defaults.

Each one: runs the workload once as a warm-up (dropped, not a step), then per candidate
checks the budget, counts a step, applies the configuration from the defaults, measures
it with ``ctx.trial_run()`` (``runs_per_candidate`` runs, median; ``bandit``: one run per
pull) and logs ``candidate`` to the trajectory. The step budget is the number of
candidates, so spending it ends the search normally (another limit, e.g. wall time, is
reported as ``budget_exceeded``). At the end the best configuration is applied and left
in place, and the host CPU time the tuner's thread used is logged and kept in
``ctx.notes["host_cpu_s"]``. No tokens.
"""

from __future__ import annotations

import math
import statistics
import time

import numpy as np

from .. import fmt, tuning
from ..limits import LimitExceeded
from .base import Agent, AgentContext


class _Tuner(Agent):
    name = "tuner"

    def __init__(self, runs_per_candidate: int = 2, seed: int = 0):
        self.runs = max(1, int(runs_per_candidate))
        self.seed = seed
        self.best: tuning.Config | None = None
        self.best_score: float | None = None
        self.history: list[dict] = []

    # -- shared ---------------------------------------------------------------------------
    def _lower(self, ctx: AgentContext) -> bool:
        return ctx.workload.spec.primary.direction == "lower"

    def _better(self, ctx: AgentContext, a: float, b: float | None) -> bool:
        return b is None or (a < b if self._lower(ctx) else a > b)

    @staticmethod
    def _logged(ctx: AgentContext):
        """A ``cmd -> dict`` runner that logs each command to the trajectory. Unlike
        ``ctx.run`` its timeout does not shrink with the wall budget, so the final
        configuration is still applied after the budget ran out."""
        def run(cmd: str) -> dict:
            r = ctx.sandbox.run(cmd, timeout=60).to_dict()
            ctx.trajectory.log("command", cmd=cmd, **r)
            return r
        return run

    def _measure(self, ctx: AgentContext, runs: int) -> tuple[float | None, list[dict]]:
        vals, raw = [], []
        for _ in range(runs):
            m = ctx.trial_run()
            raw.append(m)
            if "error" in m:
                return None, raw
            vals.append(m[ctx.workload.spec.primary.metric])
        return float(statistics.median(vals)), raw

    def evaluate(self, ctx: AgentContext, cfg: tuning.Config, runs: int | None = None) -> float | None:
        """One budget step: apply ``cfg`` (from the defaults), measure, log, track the best.
        Raises :class:`LimitExceeded` before doing anything when the budget is spent."""
        ctx.budget.check()
        ctx.budget.add_step()
        t = time.monotonic()
        errors = tuning.apply_config(ctx.sandbox, cfg, self.defaults, run=self._logged(ctx))
        score, raw = self._measure(ctx, runs or self.runs)
        if errors and cfg.scheduler and any(e.startswith(cfg.scheduler) for e in errors):
            score = None  # the scheduler did not start: this is not the candidate
        rec = {"step": ctx.budget.usage.steps, "label": cfg.label, "config": cfg.to_dict(), "score": score,
               "metrics": raw, "errors": errors, "seconds": round(time.monotonic() - t, 3)}
        self.history.append(rec)
        ctx.trajectory.log("candidate", agent=self.name, **rec)
        if score is not None and self._better(ctx, score, self.best_score):
            self.best, self.best_score = cfg, score
        return score

    def search(self, ctx: AgentContext) -> None:
        raise NotImplementedError

    def run(self, ctx: AgentContext) -> None:
        cpu0 = time.thread_time()
        self.defaults = tuning.read_defaults(ctx.sandbox)
        ctx.trajectory.log("message", role="agent", text=f"{self.name}: defaults {self.defaults}")
        limit: LimitExceeded | None = None
        try:
            ctx.budget.check()
            warm = ctx.trial_run()  # warm-up, dropped (the first run in a fresh guest is off)
            ctx.trajectory.log("message", role="agent", text=f"{self.name}: warm-up run {fmt.metrics(warm)}")
            self.search(ctx)
        except LimitExceeded as e:
            ctx.trajectory.log("limit", kind=e.kind, value=e.value, limit=e.limit)
            limit = e
        best = self.best or tuning.Config()
        errors = tuning.apply_config(ctx.sandbox, best, self.defaults, run=self._logged(ctx))
        cpu = round(time.thread_time() - cpu0, 3)
        ctx.notes["host_cpu_s"] = cpu
        ctx.notes["candidates"] = len(self.history)
        ctx.trajectory.log("message", role="agent",
                           text=f"{self.name}: keeping {best.label} (score {fmt.metric(self.best_score)}); "
                                f"{len(self.history)} candidates; host CPU {fmt.seconds(cpu)} s" + (f"; errors {errors}" if errors else ""))
        ctx.trajectory.log("tuner_summary", agent=self.name, best=best.to_dict(), best_label=best.label,
                           best_score=self.best_score, candidates=len(self.history), host_cpu_s=cpu, tokens=0)
        # the step budget is the tuner's trial count: spending it is the normal end;
        # any other limit (wall time) is a real overrun and is reported as such
        if limit is not None and limit.kind != "steps":
            raise limit


class OptunaTuner(_Tuner):
    """TPE over the parametric space; the trial count is the step budget."""

    name = "optuna"

    def __init__(self, runs_per_candidate: int = 2, seed: int = 0, n_startup_trials: int = 5):
        super().__init__(runs_per_candidate, seed)
        self.n_startup = n_startup_trials

    def search(self, ctx: AgentContext) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(seed=self.seed, n_startup_trials=self.n_startup)
        study = optuna.create_study(direction="minimize" if self._lower(ctx) else "maximize", sampler=sampler)
        start = tuning.knob_units({kn.key: self.defaults.get(kn.key, kn.default) for kn in tuning.KNOBS})
        study.enqueue_trial({kn.key: (int(u) if kn.scale == "flag" else float(u)) for kn, u in zip(tuning.KNOBS, start)})
        while True:
            ctx.budget.check()  # before asking, so no trial is left open
            trial = study.ask()
            u = [trial.suggest_float(kn.key, 0.0, 1.0) if kn.scale != "flag"
                 else float(trial.suggest_categorical(kn.key, [0, 1])) for kn in tuning.KNOBS]
            score = self.evaluate(ctx, tuning.Config(knobs=tuning.knob_config(u)))
            if score is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, score)


class BanditTuner(_Tuner):
    """UCB1 over the discrete choices; one pull = one run = one budget step."""

    name = "bandit"

    def __init__(self, c: float = 0.1, seed: int = 0, choices: list[str] | None = None):
        super().__init__(1, seed)
        self.c = c
        self.choices = list(choices or tuning.CHOICES)

    @staticmethod
    def ucb_pick(means: list[float], counts: list[int], c: float) -> int:
        """The arm to pull: an unpulled one first (in order), else the highest UCB1 index."""
        for i, n in enumerate(counts):
            if n == 0:
                return i
        total = sum(counts)
        idx = [m + c * math.sqrt(2 * math.log(total) / n) for m, n in zip(means, counts)]
        return int(np.argmax(idx))

    def search(self, ctx: AgentContext) -> None:
        k = len(self.choices)
        counts, sums = [0] * k, [0.0] * k
        values: list[list[float]] = [[] for _ in range(k)]
        dead: set[int] = set()
        ref: float | None = None
        while True:
            means = [sums[i] / counts[i] if counts[i] else 0.0 for i in range(k)]
            live = [i for i in range(k) if i not in dead]
            if not live:
                return
            pick = live[self.ucb_pick([means[i] for i in live], [counts[i] for i in live], self.c)]
            cfg = tuning.choice_config(tuning.CHOICES.index(self.choices[pick]))
            score = self.evaluate(ctx, cfg, runs=1)
            if score is None:
                dead.add(pick)  # cannot run (e.g. the scheduler does not load): never again
                continue
            if ref is None:
                ref = score
            ratio = ref / score if self._lower(ctx) else score / ref
            counts[pick] += 1
            sums[pick] += ratio
            values[pick].append(score)
            # the best arm is the one with the best mean so far (not the best single run)
            best = max((i for i in range(k) if counts[i]), key=lambda i: sums[i] / counts[i])
            self.best = tuning.choice_config(tuning.CHOICES.index(self.choices[best]))
            self.best_score = float(np.mean(values[best]))
            ctx.trajectory.log("bandit", arm=self.choices[pick], ratio=ratio, counts=dict(zip(self.choices, counts)),
                               means={a: (sums[i] / counts[i] if counts[i] else None)
                                      for i, a in enumerate(self.choices)}, best=self.choices[best])

    def evaluate(self, ctx, cfg, runs=None):
        # the bandit keeps its own notion of "best" (best mean arm), set in search()
        saved = (self.best, self.best_score)
        score = super().evaluate(ctx, cfg, runs)
        self.best, self.best_score = saved
        return score


class RandomTuner(_Tuner):
    """Uniform samples of the discrete + parametric (dict) space; the first is the defaults."""

    name = "random"

    def search(self, ctx: AgentContext) -> None:
        rng = np.random.default_rng(self.seed)
        self.evaluate(ctx, tuning.Config())
        while True:
            choice = int(rng.integers(len(tuning.CHOICES)))
            cfg = tuning.choice_config(choice)
            cfg.knobs = tuning.knob_config(rng.random(len(tuning.KNOBS)))
            self.evaluate(ctx, cfg)
