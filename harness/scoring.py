"""The scoring rules, in one place: measurement order, verdicts, SLO verdicts, "within noise".

Every reader of results (trials, ``schedcp try``, reports, the TUI, the MCP ``finish``
result) takes its words from here; the README's "Scoring rules" section describes exactly
these functions.

- **Order.** Measured rounds run both sides, baseline (B) and tuned (T), in balanced
  blocks of four, ``BT TB TB BT`` or its mirror ``TB BT BT TB`` (chosen per block by a
  seeded coin): each side goes first as often as second, and a steady drift cancels out
  within every block.
- **Verdict** of the improvement ratio (oriented, > 1 better) with its 95 % CI ``[lo, hi]``
  and the workload's noise floor ``f`` (default :data:`NOISE_FLOOR`):
  ``improved`` when lo > 1 and ratio >= 1 + f; ``regressed`` when hi < 1 and
  ratio <= 1 / (1 + f); ``no_change`` when the whole CI lies in [1 / (1 + f), 1 + f];
  otherwise ``inconclusive`` (also with no CI). Fewer than :data:`MIN_RUNS` runs a side:
  the verdict stands but is marked indicative only.
- **SLO verdict**, judged on the CI bound least favourable to the agent: a relative SLO
  needs a ratio of R (1 / relative for lower-is-better metrics, relative for higher-is-
  better ones): ``met`` when lo >= R, ``not_met`` when hi < R. An absolute SLO uses the CI
  of the tuned median: ``met`` when its worse end meets the threshold, ``not_met`` when
  its better end misses it. Both parts: ``met`` when both are met, ``not_met`` when either
  is not met; otherwise ``inconclusive``.
- **Within noise.** A workload's best-of-K ratio at or below the noise null
  (:func:`harness.stats.best_of_k_null`: what a change-nothing agent reaches 95 % of the
  time with K attempts at the workload's measured noise) is marked "within noise".
"""

from __future__ import annotations

import random

from . import fmt

NOISE_FLOOR = 0.03  # a change smaller than 3 % is not called a change
MIN_RUNS = 5  # fewer runs a side: the interval is indicative only
VERDICTS = ("improved", "regressed", "no_change", "inconclusive")
SLO_VERDICTS = ("met", "not_met", "inconclusive")


def balanced_order(rounds: int, seed: int) -> list[str]:
    """The side order of each round: blocks ``BT TB TB BT`` or ``TB BT BT TB``, one seeded
    coin per block, cut to ``rounds``."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < rounds:
        a, b = ("BT", "TB") if rng.random() < 0.5 else ("TB", "BT")
        out += [a, b, b, a]
    return out[:rounds]


def verdict(ratio: float | None, ci: list[float] | None, n: int, floor: float = NOISE_FLOOR) -> dict:
    """The verdict of one comparison and why: ``{"verdict", "rule", "noise_floor",
    "indicative", "n"}``."""
    out = {"noise_floor": floor, "n": n, "indicative": n < MIN_RUNS}
    if ratio is None:
        return {**out, "verdict": "", "rule": "not measured"}
    if not ci:
        return {**out, "verdict": "inconclusive", "rule": "no confidence interval (fewer than 2 runs a side)"}
    lo, hi = ci
    up, down = 1 + floor, 1 / (1 + floor)
    if lo > 1 and ratio >= up:
        v, rule = "improved", f"CI above 1 and ratio >= {fmt.ratio(up)}"
    elif hi < 1 and ratio <= down:
        v, rule = "regressed", f"CI below 1 and ratio <= {fmt.ratio(down)}"
    elif lo >= down and hi <= up:
        v, rule = "no_change", f"CI inside the noise band {fmt.ci([down, up])}"
    else:
        v, rule = "inconclusive", f"CI {fmt.ci(ci)} neither clear of 1 beyond the noise band nor inside it"
    return {**out, "verdict": v, "rule": rule}


def required_ratio(direction: str, relative: float) -> float:
    """The improvement ratio (> 1 better) a relative SLO asks for."""
    return 1 / relative if direction == "lower" else relative


def _meets(value: float, threshold: float, direction: str) -> bool:
    return value <= threshold if direction == "lower" else value >= threshold


def slo_verdict(direction: str, absolute: float | None, relative: float | None,
                ci: list[float] | None, tuned_median_ci: list[float] | None) -> dict:
    """``{"verdict", "parts"}``: the SLO judged on the least favourable CI bounds."""
    parts: dict[str, str] = {}
    if relative is not None:
        need = required_ratio(direction, relative)
        parts["relative"] = ("inconclusive" if not ci else "met" if ci[0] >= need
                             else "not_met" if ci[1] < need else "inconclusive")
    if absolute is not None:
        if not tuned_median_ci:
            parts["absolute"] = "inconclusive"
        else:
            worse, better = ((tuned_median_ci[1], tuned_median_ci[0]) if direction == "lower"
                             else (tuned_median_ci[0], tuned_median_ci[1]))
            parts["absolute"] = ("met" if _meets(worse, absolute, direction)
                                 else "not_met" if not _meets(better, absolute, direction) else "inconclusive")
    vals = set(parts.values())
    v = "not_met" if "not_met" in vals else "met" if vals == {"met"} else "inconclusive"
    return {"verdict": v, "parts": parts}


def within_noise(best: float | None, null95: float | None) -> bool | None:
    """Is a best-of-K ratio no better than what a change-nothing agent reaches by luck?"""
    if best is None or null95 is None:
        return None
    return best <= null95


def describe(verdict_detail: dict) -> str:
    """One phrase for displays: the verdict, marked when indicative only."""
    v = verdict_detail.get("verdict") or "-"
    return v + (" (indicative: fewer than 5 runs a side)" if verdict_detail.get("indicative") and v != "-" else "")
