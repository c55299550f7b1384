"""How numbers read in text for people, in one place: progress lines, reports, `schedcp
try`, the TUI and the agents' messages all format their figures here. Files for programs
(``result.json``, ``report.json``, events, CSV exports of records) keep full precision and
do not come through here.

Every figure is in fixed notation (never an exponent) and rounded to a few significant
digits:

==========  =============================================  ====================================
ratio       3 significant digits, zeros kept               1.00, 0.971, 2.85, 12.3
p-value     2 significant digits; < 0.0001 as "<0.0001"    0.077, 0.50, <0.0001
seconds     4 significant digits, never finer than 1 ms    2.853, 12.35, 609.4, 0.001
metric      4 significant digits, trailing zeros dropped   2.853, 10, 123500
num         like metric; an int stays as it is (a count)   0.1235, 42
percent     2 significant digits of a fraction             3.6%, 3%, 12%
usd         3 significant digits                           0.0123, 1.50, 12.3
signed      3 decimals below 1, else 3 significant digits  +0.000, -0.474, +1.25
==========  =============================================  ====================================

``None`` reads ``-`` unless the caller gives another ``none``. NaN and infinities read as
Python writes them (``nan``, ``inf``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def sig(v: float, digits: int, *, trim: bool = False, max_decimals: int | None = None) -> str:
    """``v`` rounded to ``digits`` significant digits in fixed notation (123456 with 4:
    ``123500``); ``trim`` drops trailing zeros after the point; ``max_decimals`` caps the
    digits after it (rounding further)."""
    v = float(v)
    if not math.isfinite(v):
        return str(v)
    if v == 0:
        dec = 0 if trim else digits - 1
        return f"{0.0:.{dec if max_decimals is None else min(dec, max_decimals)}f}"
    r = float(f"{v:.{digits - 1}e}")  # rounded once, so that 9.996 to 3 digits is 10.0, not 10.00
    dec = max(0, digits - 1 - math.floor(math.log10(abs(r))))
    if max_decimals is not None:
        dec = min(dec, max_decimals)
    s = f"{r:.{dec}f}"
    if trim and "." in s:
        s = s.rstrip("0").rstrip(".")
    return s[1:] if s.startswith("-") and float(s) == 0 else s  # no "-0.000"


def ratio(r: float | None, none: str = "-") -> str:
    """An improvement ratio (oriented, > 1 better): 3 significant digits, ``1.00``."""
    return none if r is None else sig(r, 3)


def ci(c, none: str = "-", sep: str = ", ") -> str:
    """A ratio's confidence interval: ``[0.982, 1.05]`` (``sep="-"``: ``0.982-1.05``)."""
    if not c:
        return none
    text = f"{ratio(c[0])}{sep}{ratio(c[1])}"
    return text if sep == "-" else f"[{text}]"


def pvalue(p: float | None, none: str = "-") -> str:
    """A p-value: 2 significant digits; below 0.0001 it reads ``<0.0001``."""
    if p is None:
        return none
    return "<0.0001" if 0 <= p < 1e-4 else sig(p, 2)


def seconds(s: float | None, none: str = "-") -> str:
    """A duration in seconds: 4 significant digits, to the millisecond at most."""
    return none if s is None else sig(s, 4, max_decimals=3)


def metric(v: float | None, none: str = "-") -> str:
    """A measured value (a workload's metric, a summary statistic): 4 significant digits,
    trailing zeros dropped."""
    return none if v is None else sig(v, 4, trim=True)


def num(v: float | int | None, digits: int = 4, none: str = "-") -> str:
    """Any figure: a float to ``digits`` significant digits (trailing zeros dropped), an
    int (a count) as it is."""
    if v is None:
        return none
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    return sig(v, digits, trim=True)


def percent(frac: float | None, digits: int = 2, none: str = "-") -> str:
    """A fraction as a percentage: 0.0361 reads ``3.6%``, 0.03 ``3%``."""
    return none if frac is None else sig(100 * frac, digits, trim=True) + "%"


def usd(v: float | None, none: str = "-") -> str:
    """A cost in US dollars: 3 significant digits (``0.0123``, ``1.50``)."""
    return none if v is None else sig(v, 3)


def signed(v: float | None, none: str = "-") -> str:
    """A difference (of ratios, of rewards), always with its sign: 3 decimals below 1
    (``+0.000``, ``-0.474``), else 3 significant digits (``+1.25``, ``-12.3``)."""
    if v is None:
        return none
    s = sig(v, 3) if abs(v) >= 1 else f"{v:.3f}"
    s = s[1:] if s.startswith("-") and float(s) == 0 else s
    return s if s.startswith("-") else "+" + s


def value(v) -> str:
    """Anything in a line of text: floats and ints as :func:`num`, a mapping as
    ``k=v, k=v`` of those, anything else as ``str``."""
    if isinstance(v, Mapping):
        return ", ".join(f"{k}={value(x)}" for k, x in v.items())
    if isinstance(v, (int, float)):
        return num(v)
    return str(v)


def metrics(m: Mapping | None) -> str:
    """A run's metrics on one line: ``wall_s=2.853, ops_per_s=123500``."""
    return ", ".join(f"{k}={metric(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else x}"
                     for k, x in (m or {}).items())


def rounded(obj, digits: int = 4):
    """``obj`` (JSON-like) with every float rounded to ``digits`` significant digits, for
    a JSON rendering that people read (a TUI title); never for a file."""
    if isinstance(obj, float):
        return float(sig(obj, digits)) if math.isfinite(obj) else obj
    if isinstance(obj, Mapping):
        return {k: rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [rounded(v, digits) for v in obj]
    return obj


_RATIO_KEYS = {"ratio", "best", "mean", "null95", "ci95", "best_ci95", "average", "average_no_outliers",
               "average_mean_of_k"}


def _seconds(key: str) -> bool:
    return key.endswith("_s") and not key.endswith("per_s")


def key_number(x: float, key: str) -> float | int:
    """``x`` rounded by what its JSON key says it is: a p-value to 2 significant digits, a
    ratio to 3, seconds (``*_s`` but not ``*per_s``) to the millisecond (or 4 significant
    digits of a shorter time), anything else to 4; whole parts are never rounded away."""
    if x == 0 or not math.isfinite(x):
        return x
    sig = 2 if key in ("p", "p_value") or key.endswith("_p") else 3 if key in _RATIO_KEYS or "ratio" in key else 4
    digits = sig - 1 - math.floor(math.log10(abs(x)))
    if _seconds(key):  # the millisecond, or 4 significant digits of a shorter time
        digits = max(digits, 3)
    return round(x) if digits <= 0 else round(x, digits)


def by_key(v, key: str = ""):
    """JSON-like ``v`` with each float rounded for reading by its key (:func:`key_number`):
    what an agent or a text-only MCP client reads of a tool's result; never for a file."""
    if isinstance(v, float):
        return key_number(v, key)
    if isinstance(v, dict):
        return {k: by_key(x, key if _seconds(key) else str(k)) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [by_key(x, key) for x in v]
    return v
