"""Goal inference (RQ2): score an agent's ``declare_goal`` against the workload's ground truth.

A declaration is correct when its metric names the workload's goal metric or one of its
accepted synonyms, and its direction is the goal's. Names are compared after
normalisation (case, ``_``/``-``/spaces, a trailing unit in brackets): equal, or the
goal name occurs as whole words inside the declared phrase (``"p99 latency (us)"``
matches the synonym ``"p99 latency"``). Directions accept common words
(minimize/maximize, reduce/increase...).

A declaration names ONE metric and ONE direction. A catch-all is wrong even when the
goal is among its alternatives (``catch_all`` and ``reason`` say why):

- alternatives joined by ``or``, ``and``, ``vs``, ``,``, ``;``, ``/``, ``|``, ``&``,
  ``+`` where at least two parts are metric phrases (a workload metric's name, a goal
  synonym, or a measure word such as latency, throughput, time) that do not all name
  one and the same metric (``"throughput or wall time"``, ``"latency, throughput"``,
  ``"wall_s/ops_per_s"``; a unit such as ``ops/s`` is one part that is a measure word
  and one that is not, so it passes);
- a phrase that names two different metrics of the workload without a separator
  (``"wall_s ops_per_s"``; needs the workload's metric names);
- a direction that says both (``"lower or higher"``).

With the metric names, a phrase that contains a goal synonym but, read whole, names
another metric is not the goal either (faiss: ``"ivf qps"`` is ``ivf_qps``, although
``"qps"`` is a synonym of ``flat_qps``): the longest name found wins.
"""

from __future__ import annotations

import re

from .workload import Goal

_LOWER = {"lower", "low", "min", "minimize", "minimise", "decrease", "reduce", "less", "smaller", "down"}
_HIGHER = {"higher", "high", "max", "maximize", "maximise", "increase", "raise", "more", "larger", "bigger", "up"}
# words that make a phrase a metric (what is measured), to tell "a or b" of two metrics
# from a phrase that merely contains "and" or a unit's "/"
_MEASURES = {"latency", "latencies", "throughput", "time", "times", "duration", "runtime", "wall", "elapsed",
             "speed", "rate", "bandwidth", "qps", "tps", "rps", "iops", "fps", "ops", "operations", "requests",
             "queries", "transactions", "tokens", "samples", "steps", "iterations", "frames", "p50", "p90", "p95",
             "p99", "p999", "percentile", "tail", "median", "mean", "average", "avg", "jitter", "delay",
             "utilization", "utilisation", "cpu"}
_UNITS = {"s", "ms", "us", "ns", "sec", "secs", "min"}
# separators joining alternatives; parentheses and brackets (units, asides) are dropped first
_ALT = re.compile(r"\s+(?:and\s*/\s*or|or|and|vs\.?|versus|plus)\s+|[,;|&+]|/", re.I)


def norm(s: str) -> str:
    s = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", s.lower())
    return " ".join(re.sub(r"[_\-/.,:;]+", " ", s).split())


def _one_direction(part: str) -> str | None:
    for w in norm(part).split():  # the first direction word: "minimize max latency" is lower
        if w in _LOWER or w.startswith("lower"):
            return "lower"
        if w in _HIGHER or w.startswith("higher"):
            return "higher"
    return None


def norm_direction(d: str) -> str | None:
    """``lower``, ``higher``, or None (none given, or alternatives: ``"lower or higher"``)."""
    found = {x for x in (_one_direction(p) for p in _ALT.split(d or "") if p) if x}
    return found.pop() if len(found) == 1 else None


def _has(d: str, n: str) -> bool:
    return bool(n) and (d == n or re.search(rf"(^| ){re.escape(n)}( |$)", d) is not None)


def metric_matches(declared: str, goal: Goal) -> bool:
    d = norm(declared)
    if not d:
        return False
    return any(_has(d, norm(name)) for name in [goal.metric, *goal.synonyms])


_UNIT_WORDS = {"second": "s", "seconds": "s", "sec": "s", "secs": "s", "msec": "ms", "msecs": "ms",
               "usec": "us", "usecs": "us", "nsec": "ns", "nsecs": "ns"}


def _canon(s: str) -> str:
    """:func:`norm` with units spelled one way (``per second`` -> ``per s``), so that a
    metric's name and its spelled-out form compare as equally long mentions."""
    return " ".join(_UNIT_WORDS.get(w, w) for w in norm(s).split())


def _names(metric: str) -> set[str]:
    """A metric name's spoken forms: ``ops_per_s`` -> ``ops per s``, ``ops``;
    ``p50_latency_us`` -> ``p50 latency us``, ``p50 latency``."""
    full = _canon(metric)
    out = {full}
    w = full.split()
    while len(w) > 1 and w[-1] in _UNITS:
        w = w[:-1]
        if len(w) > 1 and w[-1] == "per":
            w = w[:-1]
    if w:
        out.add(" ".join(w))
    return out


def _mentions(phrase: str, goal: Goal, metrics: list[str]) -> list[set[str]]:
    """The metrics ``phrase`` mentions, as groups of overlapping mentions (each group:
    the set of metrics its words could stand for), in order."""
    d = _canon(phrase)
    own = {_canon(m): m for m in metrics}  # a synonym that is another metric's name stands for it
    cands: list[tuple[str, str]] = [(_canon(n), own.get(_canon(n), goal.metric))
                                    for n in [goal.metric, *goal.synonyms]]
    for m in metrics:
        cands += [(n, m) for n in _names(m)]
    spans = []
    for n, m in cands:
        if not n:
            continue
        for x in re.finditer(rf"(?:^| )({re.escape(n)})(?= |$)", d):
            spans.append((x.start(1), x.end(1), m))
    spans.sort()
    groups: list[list[tuple[int, int, str]]] = []
    for sp in spans:
        if groups and sp[0] < max(b for _, b, _ in groups[-1]):
            groups[-1].append(sp)
        else:
            groups.append([sp])
    # in a group the longest mention wins: "ivf qps" is ivf_qps, not the goal's synonym "qps"
    out = []
    for g in groups:
        longest = max(b - a for a, b, _ in g)
        out.append({m for a, b, m in g if b - a == longest})
    return out


def catch_all(metric: str, goal: Goal, metrics: list[str] | None = None) -> str:
    """Why ``metric`` is a list of alternatives rather than one metric ("" when it is one)."""
    metrics = list(metrics or [])
    raw = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", metric)
    parts = [p.strip() for p in _ALT.split(raw) if p and p.strip()]
    if len(parts) > 1:
        named = []
        for p in parts:
            groups = _mentions(p, goal, metrics)
            if groups or set(norm(p).split()) & _MEASURES:
                named.append((p, set().union(*groups) if groups else set()))
        if len(named) > 1 and not set.intersection(*(s for _, s in named)):
            return "a list of alternatives, not one metric: " + " | ".join(p for p, _ in named)
    groups = _mentions(metric, goal, metrics)
    if len(groups) > 1 and not set.intersection(*groups):
        return "names several of the workload's metrics: " + ", ".join(sorted(set().union(*groups)))
    return ""


def score(metric: str, direction: str, goal: Goal, metrics: list[str] | None = None) -> dict:
    """Score a declaration. ``metrics``: the workload's metric names (to recognise a
    phrase that names several of them); without them only separator-joined alternatives
    are recognised as catch-alls."""
    why = catch_all(metric, goal, metrics)
    m_ok = metric_matches(metric, goal) and not why
    other = ""
    if m_ok and metrics:  # "ivf qps" contains the synonym "qps" of flat_qps but names ivf_qps
        named = set().union(*_mentions(metric, goal, metrics))
        # the ground truth may accept another metric as a synonym (nginx: p99_latency_ms)
        accepted = {goal.metric} | {m for m in metrics if _canon(m) in {_canon(x) for x in goal.synonyms}}
        if not named & accepted:
            m_ok, other = False, f"names another of the workload's metrics: {', '.join(sorted(named))}"
    d = norm_direction(direction)
    d_ok = d == goal.direction
    reasons = []
    if why or other:
        reasons.append(why or other)
    elif not m_ok:
        reasons.append("not the goal metric or one of its synonyms")
    if not d_ok:
        reasons.append("wrong direction" if d else f"not one direction: {direction!r}")
    return {"metric_ok": m_ok, "direction_ok": d_ok, "catch_all": bool(why), "correct": m_ok and d_ok,
            "reason": "; ".join(reasons), "truth": {"metric": goal.metric, "direction": goal.direction}}
