"""Summary statistics of repeated measurements."""

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


def compare(baseline: list[float], tuned: list[float], direction: str, n_boot: int = 5000, seed: int = 0) -> dict:
    """Improvement of tuned over baseline, oriented so that > 1 is better.

    ratio = median(baseline)/median(tuned) for lower-is-better metrics, and
    median(tuned)/median(baseline) for higher-is-better ones. The 95 % confidence interval
    is a percentile bootstrap of that ratio (resampling each side independently); the
    p-value is a two-sided Mann-Whitney U test (scipy).
    """
    from scipy.stats import mannwhitneyu

    b, t = np.asarray(baseline, float), np.asarray(tuned, float)
    if b.size == 0 or t.size == 0:
        return {"ratio": None, "ci95": None, "p_value": None}

    def ratio(bb, tt):
        mb, mt = np.median(bb, axis=-1), np.median(tt, axis=-1)
        return mb / mt if direction == "lower" else mt / mb

    rng = np.random.default_rng(seed)
    bi = rng.integers(0, b.size, size=(n_boot, b.size))
    ti = rng.integers(0, t.size, size=(n_boot, t.size))
    boots = ratio(b[bi], t[ti])
    lo, hi = np.percentile(boots, [2.5, 97.5])
    p = float(mannwhitneyu(b, t, alternative="two-sided").pvalue) if b.size > 1 and t.size > 1 else None
    return {"ratio": float(ratio(b, t)), "ci95": [float(lo), float(hi)], "p_value": p}


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
