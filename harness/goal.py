"""Goal inference (RQ2): score an agent's ``declare_goal`` against the workload's ground truth.

A declaration is correct when its metric names the workload's goal metric or one of its
accepted synonyms, and its direction is the goal's. Names are compared after
normalisation (case, ``_``/``-``/spaces, a trailing unit in brackets): equal, or the
goal name occurs as whole words inside the declared phrase (``"p99 latency (us)"``
matches the synonym ``"p99 latency"``). Directions accept common words
(minimize/maximize, reduce/increase...).
"""

from __future__ import annotations

import re

from .workload import Goal

_LOWER = {"lower", "low", "min", "minimize", "minimise", "decrease", "reduce", "less", "smaller", "down"}
_HIGHER = {"higher", "high", "max", "maximize", "maximise", "increase", "raise", "more", "larger", "bigger", "up"}


def norm(s: str) -> str:
    s = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", s.lower())
    return " ".join(re.sub(r"[_\-/.,:;]+", " ", s).split())


def norm_direction(d: str) -> str | None:
    w = norm(d)
    if w in _LOWER or w.startswith("lower"):
        return "lower"
    if w in _HIGHER or w.startswith("higher"):
        return "higher"
    return None


def metric_matches(declared: str, goal: Goal) -> bool:
    d = norm(declared)
    if not d:
        return False
    for name in [goal.metric, *goal.synonyms]:
        n = norm(name)
        if n and (d == n or re.search(rf"(^| ){re.escape(n)}( |$)", d)):
            return True
    return False


def score(metric: str, direction: str, goal: Goal) -> dict:
    m_ok = metric_matches(metric, goal)
    d = norm_direction(direction)
    d_ok = d == goal.direction
    return {"metric_ok": m_ok, "direction_ok": d_ok, "correct": m_ok and d_ok,
            "truth": {"metric": goal.metric, "direction": goal.direction}}
