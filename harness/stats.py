"""Statistics of repeated measurements: summaries, the paired improvement ratio and its
CI, the best-of-K noise null. The verdict rules that use them are in harness/scoring.py."""

from __future__ import annotations

import numpy as np


def summarize(values: list[float]) -> dict[str, float]:
    """median, mean, sample stdev, CV (stdev/mean) and n of a list of measurements."""
    a = np.asarray(values, dtype=float)
    if a.size == 0:
        return {"n": 0}
    mean = float(a.mean())
    std = float(a.std(ddof=1)) if a.size > 1 else 0.0
    return {
        "n": int(a.size),
        "median": float(np.median(a)),
        "mean": mean,
        "stdev": std,
        "cv": std / mean if mean else float("nan"),
        "min": float(a.min()),
        "max": float(a.max()),
    }


def summarize_runs(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """:func:`summarize` for every metric of a list of runs (each a metric -> value dict)."""
    return {m: summarize([r[m] for r in runs]) for m in (runs[0] if runs else {})}


def slo_met(value: float, baseline_median: float, direction: str, absolute: float | None,
            relative: float | None) -> bool:
    """SLO check of a median: absolute threshold and/or relative to the baseline median."""
    ok = True
    if absolute is not None:
        ok &= value <= absolute if direction == "lower" else value >= absolute
    if relative is not None:
        lim = relative * baseline_median
        ok &= value <= lim if direction == "lower" else value >= lim
    return bool(ok)


def oriented_log_ratios(baseline: list[float], tuned: list[float], direction: str) -> np.ndarray:
    """Per pair (one baseline and one tuned run of the same round): log of the improvement,
    oriented so that > 0 is better: log(b/t) for lower-is-better metrics, log(t/b) for
    higher-is-better ones."""
    b, t = np.asarray(baseline, float), np.asarray(tuned, float)
    if b.shape != t.shape:
        raise ValueError(f"paired runs need as many baseline as tuned values ({b.size} vs {t.size})")
    if (b <= 0).any() or (t <= 0).any():
        raise ValueError("ratios need positive measurements")
    d = np.log(b) - np.log(t)
    return d if direction == "lower" else -d


def paired_compare(baseline: list[float], tuned: list[float], direction: str, level: float = 0.95) -> dict:
    """Improvement of tuned over baseline from paired rounds (run i of each side measured
    back to back in round i), oriented so that > 1 is better.

    ratio = the geometric mean of the per-round ratios; the CI is Student's t interval of
    the mean per-round log ratio, exponentiated (exact for log-normal noise; coverage is
    checked by known-answer tests); the p-value is the one-sample t-test of those log
    ratios against 0. Pairing by round takes slow drift of the host out of the comparison.
    Fewer than 2 rounds: ratio only.
    """
    from scipy import stats as st

    if len(baseline) == 0 or len(tuned) == 0:
        return {"ratio": None, "ci95": None, "p_value": None, "n": 0, "method": "paired-t-log"}
    d = oriented_log_ratios(baseline, tuned, direction)
    n = int(d.size)
    out = {"ratio": float(np.exp(d.mean())), "ci95": None, "p_value": None, "n": n, "method": "paired-t-log"}
    if n >= 2:
        se = float(d.std(ddof=1)) / np.sqrt(n)
        q = float(st.t.ppf(0.5 + level / 2, n - 1))
        out["ci95"] = [float(np.exp(d.mean() - q * se)), float(np.exp(d.mean() + q * se))]
        out["p_value"] = (float(st.ttest_1samp(d, 0.0).pvalue) if se > 1e-12
                          else 1.0 if abs(d.mean()) < 1e-12 else 0.0)
    return out


def median_ci(values: list[float], level: float = 0.95, n_boot: int = 5000, seed: int = 0) -> list[float] | None:
    """Percentile-bootstrap interval of the median of ``values`` (None under 2 values)."""
    a = np.asarray(values, float)
    if a.size < 2:
        return None
    rng = np.random.default_rng(seed)
    boots = np.median(a[rng.integers(0, a.size, size=(n_boot, a.size))], axis=1)
    lo, hi = np.percentile(boots, [50 * (1 - level), 50 * (1 + level)])
    return [float(lo), float(hi)]


def best_of_k_null(relative: list[float], n: int, k: int, q: float = 0.95, sims: int = 4000, seed: int = 0) -> float | None:
    """The best-of-``k`` ratio that an agent changing nothing reaches with probability ``q``.

    ``relative``: baseline runs of the workload, each divided by its own trial's baseline
    geometric mean (so they carry the run-to-run and instance-to-instance noise, not the
    trials' levels). Each simulated attempt draws ``n`` baseline and ``n`` tuned runs from
    that pool (with replacement), scores them as :func:`paired_compare` does, and the best
    of ``k`` attempts is kept; the result is the ``q`` quantile of that best. Direction
    does not matter: both sides come from one pool. None with fewer than 2 values.
    """
    a = np.asarray(relative, float)
    if a.size < 2 or n < 1 or k < 1:
        return None
    rng = np.random.default_rng(seed)
    logs = np.log(a)
    b = logs[rng.integers(0, a.size, size=(sims, k, n))]
    t = logs[rng.integers(0, a.size, size=(sims, k, n))]
    ratios = np.exp((b - t).mean(axis=2))
    return float(np.quantile(ratios.max(axis=1), q))
