"""The RQ1 table of a job, from its ``result.json`` files only.

Per workload: baseline and tuned medians of the primary metric, the improvement
(oriented, > 1 is better) as best of K attempts and mean over attempts, the 95 % CI of
the best attempt, SLO met, steps, tokens, cost. Then the average improvement and the
average without outliers: improvements outside [Q1 - 1.5 IQR, Q3 + 1.5 IQR] of the
per-workload best-of-K values are left out (Tukey's rule).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from .models import TrialResult


def rows(results: list[TrialResult]) -> list[dict]:
    by_wl: dict[str, list[TrialResult]] = {}
    for r in results:
        by_wl.setdefault(r.workload, []).append(r)
    out = []
    for wl, rs in sorted(by_wl.items()):
        ok = [r for r in rs if r.improvement.get("ratio")]
        best = max(ok, key=lambda r: r.improvement["ratio"]) if ok else None
        pm = rs[0].primary_metric
        out.append({
            "workload": wl,
            "metric": pm,
            "direction": rs[0].direction,
            "attempts": len(rs),
            "measured": len(ok),
            "baseline": best.summary[pm].baseline["median"] if best else None,
            "tuned": best.summary[pm].tuned["median"] if best else None,
            "best": best.improvement["ratio"] if best else None,
            "best_ci95": best.improvement.get("ci95") if best else None,
            "best_p": best.improvement.get("p_value") if best else None,
            "mean": float(np.mean([r.improvement["ratio"] for r in ok])) if ok else None,
            "slo_met": bool(best.slo.get("tuned_met")) if best else False,
            "steps": sum(r.usage.steps for r in rs),
            "tokens": sum(r.usage.input_tokens + r.usage.output_tokens for r in rs),
            # unknown (None) when any trial's model has no price: never counted as zero
            "cost_usd": (None if any(r.usage.cost_usd is None for r in rs)
                         else round(sum(r.usage.cost_usd for r in rs), 4)),
            "backend": ", ".join(sorted({r.backend or "none" for r in rs})),
            "model": ", ".join(sorted({r.model or "-" for r in rs})),
            "malformed_tool_calls": sum(r.malformed_tool_calls for r in rs),
            "wall_s": round(sum(r.usage.wall_s for r in rs), 1),  # the agent phase, all attempts
            "host_cpu_s": (round(sum(r.usage.host_cpu_s for r in rs if r.usage.host_cpu_s is not None), 2)
                           if any(r.usage.host_cpu_s is not None for r in rs) else None),
            "failures": sorted({r.failure_kind for r in rs if r.failure_kind != "none"}),
        })
    return out


def averages(rs: list[dict]) -> dict:
    vals = np.array([r["best"] for r in rs if r["best"] is not None], float)
    if vals.size == 0:
        return {"average": None, "average_no_outliers": None, "outliers": []}
    q1, q3 = np.percentile(vals, [25, 75])
    lo, hi = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
    keep = [r for r in rs if r["best"] is not None and lo <= r["best"] <= hi]
    return {
        "average": float(vals.mean()),
        "average_no_outliers": float(np.mean([r["best"] for r in keep])) if keep else None,
        "outliers": [r["workload"] for r in rs if r["best"] is not None and not lo <= r["best"] <= hi],
        "outlier_rule": "Tukey: outside [Q1 - 1.5 IQR, Q3 + 1.5 IQR] of best-of-K improvements",
    }


def _f(v, fmt="{:.3f}"):
    return "-" if v is None else fmt.format(v)


def cost(v) -> str:
    return "unknown" if v is None else f"{v:.4f}"


def render(results: list[TrialResult], fmt: str = "md") -> str:
    rs, av = rows(results), averages(rows(results))
    if fmt == "json":
        return json.dumps({"workloads": rs, **av}, indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rs[0].keys()) if rs else ["workload"])
        w.writeheader()
        for r in rs:
            w.writerow({k: (json.dumps(v) if isinstance(v, list) else v) for k, v in r.items()})
        return buf.getvalue()
    lines = ["| workload | backend | model | metric | baseline | tuned | best x | 95% CI | mean x | SLO | steps | tokens "
             "| cost $ | malformed calls | failures |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rs:
        ci = f"[{r['best_ci95'][0]:.3f}, {r['best_ci95'][1]:.3f}]" if r["best_ci95"] else "-"
        lines.append(f"| {r['workload']} | {r['backend']} | {r['model']} | {r['metric']} ({r['direction']}) | {_f(r['baseline'], '{:.4g}')} | "
                     f"{_f(r['tuned'], '{:.4g}')} | {_f(r['best'])} | {ci} | {_f(r['mean'])} | "
                     f"{'met' if r['slo_met'] else 'not met'} | {r['steps']} | {r['tokens']} | {cost(r['cost_usd'])} | "
                     f"{r['malformed_tool_calls']} | {', '.join(r['failures']) or '-'} |")
    lines.append("")
    lines.append(f"Average improvement: {_f(av['average'])}x; without outliers: {_f(av['average_no_outliers'])}x "
                 f"(outliers: {', '.join(av['outliers']) or 'none'}; rule: Tukey 1.5 IQR)")
    g = [r for r in results if r.goal is not None]
    if g:
        ok = [r for r in g if r.goal.get("correct")]
        steps = [r.goal["step"] for r in g if r.goal.get("step") is not None]
        lines.append(f"Goal inference (--no-slo-hint): {len(ok)}/{len(g)} correct"
                     + (f", declared at step {np.mean(steps):.1f} on average" if steps else "")
                     + (f"; wrong: {', '.join(sorted(r.workload for r in g if not r.goal.get('correct')))}"
                        if len(ok) < len(g) else ""))
    return "\n".join(lines)


def plot(results: list[TrialResult], out_dir: Path) -> list[Path]:
    """PNG plots: baseline vs tuned distributions per workload, and the improvements."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    ok = [r for r in results if r.baseline_runs and r.tuned_runs]
    if not ok:
        return paths
    fig, axes = plt.subplots(1, len(ok), figsize=(3.2 * len(ok), 3.2), squeeze=False)
    for ax, r in zip(axes[0], ok):
        pm = r.primary_metric
        ax.boxplot([[x[pm] for x in r.baseline_runs], [x[pm] for x in r.tuned_runs]])
        ax.set_xticks([1, 2], ["baseline", "tuned"])
        ax.set_title(f"{r.workload} a{r.attempt}\n{pm} ({r.direction} better)", fontsize=8)
    fig.tight_layout()
    p = out_dir / "distributions.png"
    fig.savefig(p, dpi=90)
    plt.close(fig)
    paths.append(p)
    rs = rows(results)
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(rs)), 3))
    ax.bar([r["workload"] for r in rs], [r["best"] or 0 for r in rs])
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_ylabel("improvement (x, >1 better)")
    fig.tight_layout()
    p = out_dir / "improvements.png"
    fig.savefig(p, dpi=90)
    plt.close(fig)
    paths.append(p)
    return paths
