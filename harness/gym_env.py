"""A Gymnasium environment backed by a real sandbox: one episode = one fresh guest.

``reset()`` closes the previous guest and opens a fresh one from the saved state
(``backend.open``), installs and sets up the workload, runs it once as a warm-up
(dropped), then runs it ``baseline_runs`` times while :mod:`harness.telemetry` observes
the guest: the median primary metric is the episode's **baseline**, and the
observation is the telemetry of the last of those runs.

``step(action)`` applies the action's configuration in the guest (absolute: the guest's
defaults are restored first, see :mod:`harness.tuning`), runs the workload once at the
same size under telemetry, and returns:

- observation: ``float32[8]``, named in ``info["features"]``: CPU utilisation (%),
  mean run-queue length, context switches per second, mean run-queue wait per
  scheduling (us, ``/proc/schedstat``), the 50th and 99th percentiles of the wakeup
  scheduling latency (us, an in-kernel histogram, see :mod:`harness.telemetry`; 0 when
  the guest has no hist triggers), the primary metric of this run, and its oriented
  ratio to the baseline (> 1 is better; 1.0 after reset);
- reward: ``ratio - 1 + slo_bonus`` when the workload's SLO is met (relative to the
  baseline and/or absolute), ``ratio - 1 - slo_bonus`` when not (``slo_bonus`` 0.1 by
  default); ``FAIL_REWARD`` (-1) when the run failed or the guest died, which also
  terminates the episode;
- ``terminated``: only on such a failure; ``truncated``: after ``max_steps`` steps;
- ``info``: the raw metrics and telemetry, the configuration applied, errors applying
  it (e.g. a scheduler that could not start: the run then measures what did apply),
  the ratio, SLO status and timings.

Measurements are noisy (CV 2-5 % at smoke size under TCG, more on a busy host): a
policy should average several steps before trusting a difference.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import EnvSpec

from sandbox.base import GuestCrashed, SandboxError

from . import bench, telemetry, tuning
from .stats import slo_met
from .workload import Workload, WorkloadError, load_workload

ENV_ID = "schedcp/SchedCP-v0"
ENTRY_POINT = "harness.gym_env:SchedCPEnv"
FEATURES = ["cpu_util_pct", "runqueue_len_mean", "ctx_switches_per_s", "runq_wait_us_per_sched",
            "wakeup_lat_p50_us", "wakeup_lat_p99_us", "primary_metric", "primary_ratio"]
OBS_HIGH = np.array([100.0, 1e4, 1e8, 1e7, 1e8, 1e8, 1e9, 100.0], dtype=np.float32)
_TELEMETRY = FEATURES[:6]  # the features that come from harness.telemetry, in order
FAIL_REWARD = -1.0
ACTION_SPACES = ("discrete", "parametric", "dict")


def oriented_ratio(value: float, baseline: float, direction: str) -> float:
    """> 1 is better: baseline/value for lower-is-better metrics, value/baseline otherwise."""
    if value <= 0 or baseline <= 0:
        return 0.0
    return baseline / value if direction == "lower" else value / baseline


def reward(value: float, baseline: float, direction: str, slo_absolute: float | None,
           slo_relative: float | None, slo_bonus: float = 0.1) -> tuple[float, float, bool]:
    """(reward, ratio, slo met) of one measurement against the episode's baseline."""
    ratio = oriented_ratio(value, baseline, direction)
    met = slo_met(value, baseline, direction, slo_absolute, slo_relative)
    return ratio - 1.0 + (slo_bonus if met else -slo_bonus), ratio, met


def make_action_space(kind: str) -> spaces.Space:
    n = len(tuning.KNOBS)
    box = spaces.Box(low=0.0, high=1.0, shape=(n,), dtype=np.float32)
    if kind == "discrete":
        return spaces.Discrete(len(tuning.CHOICES))
    if kind == "parametric":
        return box
    if kind == "dict":
        return spaces.Dict({"choice": spaces.Discrete(len(tuning.CHOICES)), "knobs": box})
    raise ValueError(f"action_space must be one of {', '.join(ACTION_SPACES)}, not {kind!r}")


def decode_action(kind: str, action: Any) -> tuning.Config:
    """The configuration an action stands for.

    - discrete: an index into :data:`harness.tuning.CHOICES`;
    - parametric: a vector in [0, 1]^n mapped onto :data:`harness.tuning.KNOBS`, EEVDF stays;
    - dict: ``{"choice": index, "knobs": vector}``, both: the scheduler or preset of the
      choice plus the knobs (a preset's own keys win over the knobs for those keys).
    """
    if kind == "discrete":
        return tuning.choice_config(int(np.asarray(action).reshape(())))
    if kind == "parametric":
        return tuning.Config(knobs=tuning.knob_config(action))
    if kind == "dict":
        cfg = tuning.choice_config(int(np.asarray(action["choice"]).reshape(())))
        cfg.knobs = tuning.knob_config(action["knobs"])
        return cfg
    raise ValueError(f"unknown action space {kind!r}")


def encode_config(kind: str, cfg: tuning.Config):
    """Inverse of :func:`decode_action` (knobs missing from ``cfg``: documented defaults)."""
    label = f"sched:{cfg.scheduler}" if cfg.scheduler else f"sysctl:{cfg.preset}" if cfg.preset else "default"
    if kind == "discrete":
        return tuning.CHOICES.index(label)
    knobs = tuning.knob_units(cfg.knobs)
    if kind == "parametric":
        return knobs
    return {"choice": tuning.CHOICES.index(label), "knobs": knobs}


class SchedCPEnv(gym.Env):
    """See the module docstring. Construction is cheap: the first guest opens at ``reset``."""

    metadata = {"render_modes": []}

    def __init__(self, workload: str = "hackbench", size: str = "smoke", action_space: str = "discrete",
                 max_steps: int = 10, warmup_runs: int = 1, baseline_runs: int = 1, slo_bonus: float = 0.1,
                 recipe: str | None = None, backend=None):
        if size not in ("smoke", "full"):
            raise ValueError(f"size must be smoke or full, not {size!r}")
        self.kind = action_space
        self.action_space = make_action_space(action_space)
        self.observation_space = spaces.Box(low=np.zeros(len(FEATURES), np.float32), high=OBS_HIGH.copy(),
                                            dtype=np.float32)
        self.workload_name, self.size = workload, size
        self.wl: Workload = load_workload(workload)
        self.max_steps, self.warmup_runs = int(max_steps), int(warmup_runs)
        self.baseline_runs, self.slo_bonus = max(1, int(baseline_runs)), float(slo_bonus)
        self.recipe, self._backend = recipe, backend
        self.sb = None
        self.defaults: dict[str, str] = {}
        self.baseline: float | None = None
        self.steps = 0
        self.episodes = 0
        self._last_obs = np.zeros(len(FEATURES), np.float32)
        self.spec = EnvSpec(id=ENV_ID, entry_point=ENTRY_POINT, nondeterministic=True,
                            kwargs={"workload": workload, "size": size, "action_space": action_space,
                                    "max_steps": max_steps, "warmup_runs": warmup_runs,
                                    "baseline_runs": baseline_runs, "slo_bonus": slo_bonus, "recipe": recipe})

    # -- helpers -------------------------------------------------------------------------
    @property
    def backend(self):
        if self._backend is None:
            from sandbox.factory import backend_for

            self._backend = backend_for(self.recipe)
        return self._backend

    @property
    def metric(self) -> str:
        return self.wl.spec.primary.metric

    @property
    def direction(self) -> str:
        return self.wl.spec.primary.direction

    def decode(self, action) -> tuning.Config:
        return decode_action(self.kind, action)

    def _measure(self) -> tuple[dict, dict, float]:
        """One run of the workload under telemetry: (metrics, telemetry, seconds)."""
        mon = telemetry.Background(self.sb)
        mon.start()
        try:
            r = bench.run_once(self.sb, self.wl, self.size)
        finally:
            tel = mon.stop()
        return r.metrics, tel, r.duration_s

    def _obs(self, tel: dict, value: float, ratio: float) -> np.ndarray:
        v = [tel.get(k) or 0.0 for k in _TELEMETRY] + [value, ratio]
        return np.clip(np.asarray(v, dtype=np.float32), 0.0, OBS_HIGH)

    def _close_sandbox(self) -> None:
        if self.sb is not None:
            sb, self.sb = self.sb, None
            try:
                sb.close()
            except Exception:  # a dead guest is still gone
                pass

    # -- gymnasium API ---------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        t0 = time.monotonic()
        self._close_sandbox()
        self.episodes += 1
        self.steps = 0
        self.sb = self.backend.open(job="gym", trial=f"{self.workload_name}-e{self.episodes}")
        t_open = time.monotonic() - t0
        bench.setup(self.sb, self.wl, self.size)
        self.defaults = tuning.read_defaults(self.sb)
        for i in range(self.warmup_runs):
            bench.run_once(self.sb, self.wl, self.size, index=i, warmup=True)
        vals, runs = [], []
        for _ in range(self.baseline_runs):
            metrics, tel, dur = self._measure()
            vals.append(metrics[self.metric])
            runs.append({"metrics": metrics, "telemetry": tel, "duration_s": round(dur, 3)})
        self.baseline = float(statistics.median(vals))
        obs = self._obs(runs[-1]["telemetry"], vals[-1], oriented_ratio(vals[-1], self.baseline, self.direction))
        self._last_obs = obs.copy()
        info = {"features": list(FEATURES), "metric": self.metric, "direction": self.direction,
                "baseline": self.baseline, "baseline_runs": runs, "defaults": dict(self.defaults),
                "kernel": self.sb.relay.guest_release,
                "timing": {"open_s": round(t_open, 3), "reset_s": round(time.monotonic() - t0, 3)}}
        return obs, info

    def step(self, action):
        if self.sb is None or self.baseline is None:
            raise RuntimeError("call reset() before step()")
        t0 = time.monotonic()
        self.steps += 1
        cfg = self.decode(action)
        truncated = self.steps >= self.max_steps
        info: dict[str, Any] = {"features": list(FEATURES), "step": self.steps, "config": cfg.to_dict(),
                                "label": cfg.label}
        try:
            info["apply_errors"] = tuning.apply_config(self.sb, cfg, self.defaults)
            metrics, tel, dur = self._measure()
        except (WorkloadError, SandboxError, GuestCrashed, telemetry.TelemetryError) as e:
            info.update(error=f"{type(e).__name__}: {e}", step_s=round(time.monotonic() - t0, 3))
            return self._last_obs.copy(), FAIL_REWARD, True, truncated, info
        value = metrics[self.metric]
        slo = self.wl.spec.slo
        r, ratio, met = reward(value, self.baseline, self.direction, slo.absolute, slo.relative, self.slo_bonus)
        obs = self._obs(tel, value, ratio)
        self._last_obs = obs.copy()
        info.update(metrics=metrics, telemetry=tel, value=value, baseline=self.baseline, ratio=ratio,
                    slo_met=met, run_s=round(dur, 3), step_s=round(time.monotonic() - t0, 3))
        return obs, float(r), False, truncated, info

    def close(self):
        self._close_sandbox()
        super().close()
