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
