"""The tuning space shared by the Gym environment and the classic tuners.

A **configuration** is absolute: a sched_ext scheduler (or none: EEVDF), a sysctl preset
(or none), and values for the parametric knobs. Applying one first restores the guest's
defaults (read once per fresh guest), so a configuration means the same thing whatever
was applied before it.

- **discrete**: :data:`CHOICES`, ``default`` plus the prebuilt sched_ext schedulers and
  the sysctl/debugfs presets of ``scx-search`` (its lists, not a copy).
- **parametric**: :data:`KNOBS`, EEVDF's knobs that exist in the guest kernel 7.3.4
  (checked in a VM: ``kernel.sched_*`` and ``/sys/kernel/debug/sched/*``). Actions are
  normalised to ``[0, 1]`` per knob and mapped to the knob's documented bounds (log scale
  for the nanosecond and count knobs; ``>= 0.5`` means *on* for flags).

Knobs that exist but are left out, because they cannot change how this guest's ordinary
(SCHED_OTHER) tasks are scheduled: ``kernel.sched_rt_*``, ``sched_rr_timeslice_ms``,
``sched_deadline_*`` (real-time/deadline classes only), ``sched_util_clamp_*`` (no
uclamp users, no frequency scaling in a VM), ``sched_cfs_bandwidth_slice_us`` (no CPU
quota set), ``sched_schedstats`` (accounting only), ``tunable_scaling`` (only rescales
the others), ``preempt`` (boot-time model).
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field

import numpy as np

from sandbox.base import Sandbox
from sandbox.guest import SchedulerError, sched_ext_state, start_scheduler, stop_scheduler

from .agents.scx_search import SCHEDULERS, SYSCTL_PRESETS

DEBUGFS = "/sys/kernel/debug/sched"
FEATURES = f"{DEBUGFS}/features"


@dataclass(frozen=True)
class Knob:
    key: str  # sysctl name, absolute knob file, or "features:<FLAG>" (a sched_feat flag)
    low: float
    high: float
    scale: str  # log | linear | flag
    default: float  # kernel 7.3.4's value in the 2-vCPU guest (documentation; the live value is read)
    doc: str

    def value(self, u: float) -> str:
        """The knob's value for a normalised action ``u`` in [0, 1]."""
        u = float(min(max(u, 0.0), 1.0))
        if self.scale == "flag":
            return "1" if u >= 0.5 else "0"
        if self.scale == "log":
            v = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            v = self.low + u * (self.high - self.low)
        return str(int(round(min(max(v, self.low), self.high))))

    def unit(self, value: str | float) -> float:
        """Inverse of :meth:`value`: the normalised action for a knob value (clipped)."""
        v = float(value)
        if self.scale == "flag":
            return 1.0 if v >= 0.5 else 0.0
        v = min(max(v, self.low), self.high)
        if self.scale == "log":
            return (math.log(v) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (v - self.low) / (self.high - self.low)


KNOBS: list[Knob] = [
    Knob(f"{DEBUGFS}/base_slice_ns", 100_000, 20_000_000, "log", 1_400_000,
         "EEVDF base time slice (request size); shorter: lower latency, more switches"),
    Knob(f"{DEBUGFS}/migration_cost_ns", 10_000, 50_000_000, "log", 500_000,
         "a task that ran this recently is cache-hot and not migrated by load balancing"),
    Knob(f"{DEBUGFS}/nr_migrate", 1, 256, "log", 32, "tasks moved per load-balancing pass"),
    Knob("kernel.sched_autogroup_enabled", 0, 1, "flag", 1, "group tasks by session for fairness"),
    Knob("features:RUN_TO_PARITY", 0, 1, "flag", 1, "a woken task runs until it reaches parity (its slice)"),
    Knob("features:PREEMPT_SHORT", 0, 1, "flag", 1, "a waking task with a shorter slice may preempt"),
    Knob("features:NEXT_BUDDY", 0, 1, "flag", 0, "prefer the last woken task (the wakee) next"),
    Knob("features:WAKEUP_PREEMPTION", 0, 1, "flag", 1, "a waking task may preempt the running one"),
]
KNOB_KEYS = [k.key for k in KNOBS]

# discrete choices: labels as scx-search logs them
CHOICES: list[str] = ["default"] + [f"sched:{s}" for s in SCHEDULERS] + [f"sysctl:{p}" for p in SYSCTL_PRESETS]


@dataclass
class Config:
    scheduler: str | None = None  # a prebuilt sched_ext scheduler, e.g. scx_simple
    preset: str | None = None  # a key of SYSCTL_PRESETS
    knobs: dict[str, str] = field(default_factory=dict)  # knob key -> value (as written)

    @property
    def label(self) -> str:
        parts = ([f"sched:{self.scheduler}"] if self.scheduler else []) + \
                ([f"sysctl:{self.preset}"] if self.preset else []) + \
                [f"{k.rsplit('/', 1)[-1]}={v}" for k, v in self.knobs.items()]
        return " ".join(parts) or "default"

    def to_dict(self) -> dict:
        return {"scheduler": self.scheduler, "preset": self.preset, "knobs": dict(self.knobs)}

    def settings(self) -> dict[str, str]:
        """Every knob this configuration writes: the explicit knobs, and a preset's values
        on top (a preset wins for the keys it sets, so that choosing it means something)."""
        out = dict(self.knobs)
        out.update(SYSCTL_PRESETS[self.preset] if self.preset else {})
        return out


def choice_config(index: int) -> Config:
    label = CHOICES[int(index)]
    kind, _, what = label.partition(":")
    return Config(scheduler=what if kind == "sched" else None, preset=what if kind == "sysctl" else None)


def knob_config(u) -> dict[str, str]:
    u = np.asarray(u, dtype=float).reshape(-1)
    if u.shape != (len(KNOBS),):
        raise ValueError(f"expected {len(KNOBS)} knob values, got shape {u.shape}")
    return {k.key: k.value(x) for k, x in zip(KNOBS, u)}


def knob_units(values: dict[str, str | float]) -> np.ndarray:
    """Normalised action vector for knob values (knobs not given: their documented default)."""
    return np.array([k.unit(values.get(k.key, k.default)) for k in KNOBS], dtype=np.float32)


# -- in the guest ----------------------------------------------------------------------

def _read_cmd(key: str) -> str:
    if key.startswith("/"):
        return f"cat {shlex.quote(key)}"
    return f"sysctl -n {shlex.quote(key)}"


def _write_cmd(key: str, value: str) -> str:
    if key.startswith("features:"):
        flag = key.split(":", 1)[1]
        return f"echo {'' if value == '1' else 'NO_'}{flag} > {FEATURES}"
    if key.startswith("/"):
        return f"echo {shlex.quote(str(value))} > {shlex.quote(key)}"
    return f"sysctl -q -w {shlex.quote(f'{key}={value}')}"


def read_defaults(sb: Sandbox) -> dict[str, str]:
    """The guest's current values of every knob and preset key (call on a fresh guest)."""
    keys = [k for k in dict.fromkeys(KNOB_KEYS + [k for p in SYSCTL_PRESETS.values() for k in p])
            if not k.startswith("features:")]
    script = "; ".join(f"printf '%s\\t%s\\n' {shlex.quote(k)} \"$({_read_cmd(k)} 2>/dev/null)\"" for k in keys)
    r = sb.run(f"{script}; printf 'features\\t%s\\n' \"$(cat {FEATURES} 2>/dev/null)\"", timeout=60)
    out: dict[str, str] = {}
    feats: list[str] = []
    for line in r.stdout.splitlines():
        k, _, v = line.partition("\t")
        if k == "features":
            feats = v.split()
        elif v.strip():
            out[k] = v.strip()
    for k in KNOB_KEYS:
        if k.startswith("features:"):
            flag = k.split(":", 1)[1]
            if flag in feats:
                out[k] = "1"
            elif f"NO_{flag}" in feats:
                out[k] = "0"
    return out


def write_settings(sb: Sandbox, values: dict[str, str], run=None) -> list[str]:
    """Write knob values in one guest command; the list of errors (empty when all took)."""
    if not values:
        return []
    script = "; ".join(f"{{ {_write_cmd(k, v)}; }} 2>/dev/null || echo {shlex.quote(f'cannot set {k}={v}')}"
                       for k, v in values.items())
    r = run(script) if run else sb.run(script, timeout=60).to_dict()
    return [ln for ln in r["stdout"].splitlines() if ln.startswith("cannot set")]


def apply_config(sb: Sandbox, cfg: Config, defaults: dict[str, str], run=None) -> list[str]:
    """Restore the defaults, then apply ``cfg``. Returns the errors (an unknown or
    unavailable scheduler, a knob that did not take); what could be applied stays applied.
    ``run``: a callable ``cmd -> dict`` that logs (``AgentContext.run``), else ``sb.run``."""
    errors: list[str] = []
    if sched_ext_state(sb).state != "disabled":
        try:
            stop_scheduler(sb)
        except SchedulerError as e:
            errors.append(f"cannot stop the attached scheduler: {e}")
    settings = cfg.settings()
    restore = {k: v for k, v in defaults.items() if k not in settings}
    errors += write_settings(sb, {**restore, **settings}, run)
    if cfg.scheduler:
        try:
            start_scheduler(sb, cfg.scheduler)
        except SchedulerError as e:
            errors.append(f"{cfg.scheduler}: {e}")
    return errors
