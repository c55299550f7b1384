"""Budgets as first-class values: each is enforced by the agent loop and recorded.

``BudgetTracker.check()`` raises :class:`LimitExceeded` naming the limit that was hit;
the trial then stops the agent, still measures what it left in place, and records the
limit (``failure_kind = budget_exceeded``).
"""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from . import fmt
from .models import Budget, Usage

PRICES = yaml.safe_load((Path(__file__).parent / "prices.yaml").read_text())


def _over(value: float, limit: float) -> str:
    """``value > limit`` for people: 4 significant digits, more only where 4 would show
    two equal figures (600.012 s over a 600 s budget)."""
    for digits in (4, 6, 9):
        v, lim = fmt.num(value, digits), fmt.num(limit, digits)
        if v != lim:
            break
    return f"{v} > {lim}"


class LimitExceeded(Exception):
    def __init__(self, kind: str, value: float, limit: float):
        super().__init__(f"{kind} budget exceeded: {_over(value, limit)}")
        self.kind, self.value, self.limit = kind, value, limit


def price(model: str | None) -> dict | None:
    """USD per million tokens for ``model``, or None when prices.yaml does not list it (the
    cost is then unknown, never taken as zero or as another model's price)."""
    return PRICES.get(model or "")


class BudgetTracker:
    def __init__(self, budget: Budget, model: str | None = None, energy=None):
        self.budget, self.model = budget, model
        self.usage = Usage()
        self.t0 = time.monotonic()
        self.energy = energy  # a harness.energy.EnergyMeter, or None (no energy measured)

    def start(self) -> None:
        """Start the wall-time budget (and ``usage.wall_s``) now: when the agent starts,
        not when the trial's VMs are being prepared; the energy meter too."""
        self.t0 = time.monotonic()
        if self.energy is not None:
            self.energy.start()

    def read_energy(self) -> float | None:
        """Put the energy used since :meth:`start` into ``usage`` (each figure with its
        source, or a note why there is none); returns the total (CPU + GPU), None when none."""
        u, m = self.usage, self.energy
        if m is None:
            u.energy_note = u.energy_note or "energy not measured"
            return None
        used, src, notes = m.read(), m.sources, m.notes
        u.energy_j, u.energy_source, u.energy_note = used["cpu"], src.get("cpu", ""), notes.get("cpu", "")
        u.gpu_energy_j, u.gpu_energy_source, u.gpu_energy_note = used["gpu"], src.get("gpu", ""), notes.get("gpu", "")
        return m.total(used)

    def add_call(self, input_tokens: int, output_tokens: int) -> None:
        self.usage.steps += 1
        self.add_tokens(input_tokens, output_tokens)

    def add_tokens(self, input_tokens: int, output_tokens: int) -> None:
        """Tokens without a step (totals a CLI reports at the end)."""
        self.usage.input_tokens += input_tokens
        self.usage.output_tokens += output_tokens
        p = price(self.model)
        if p is None:
            self.usage.cost_usd = None
        elif self.usage.cost_usd is not None:
            self.usage.cost_usd += (input_tokens * p["input"] + output_tokens * p["output"]) / 1e6

    @property
    def cost_enforced(self) -> bool:
        """False when the model has no price: the cost budget cannot be enforced."""
        return price(self.model) is not None

    def add_step(self) -> None:
        self.usage.steps += 1

    @property
    def remaining_s(self) -> float:
        return self.budget.wall_s - (time.monotonic() - self.t0)

    def check(self) -> None:
        u, b = self.usage, self.budget
        self.usage.wall_s = time.monotonic() - self.t0
        for kind, value, limit in (("steps", u.steps, b.steps), ("input_tokens", u.input_tokens, b.input_tokens),
                                   ("output_tokens", u.output_tokens, b.output_tokens),
                                   ("cost_usd", u.cost_usd, b.cost_usd), ("wall_s", u.wall_s, b.wall_s)):
            if value is not None and value >= limit:
                raise LimitExceeded(kind, value, limit)
        if b.energy_j is not None:  # read only when budgeted: a guest GPU's counter costs a command
            used = self.read_energy()
            if used is not None and used >= b.energy_j:
                raise LimitExceeded("energy_j", used, b.energy_j)
