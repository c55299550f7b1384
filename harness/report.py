"""The RQ1 table of a job, from its ``result.json`` files only.

Per workload: baseline and tuned medians of the primary metric, the improvement
(oriented, > 1 is better) as the paper's best of K attempts with its 95 % CI and verdict,
the mean over all K attempts, attempts improved k/K, failed attempts, the noise null (the
best-of-K a change-nothing agent reaches by luck) and the SLO verdict, steps, tokens,
cost. Then the headline both ways: the average of best-of-K (and without outliers:
values outside [Q1 - 1.5 IQR, Q3 + 1.5 IQR], Tukey's rule) and the average of mean-of-K.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from . import fmt, scoring
from .models import TrialResult
from .stats import best_of_k_null


def _measured(r: TrialResult) -> bool:
    return bool(r.improvement.get("ratio"))


def noise_pool(rs: list[TrialResult]) -> tuple[list[float], int]:
    """The workload's measured noise, for the best-of-K null: every measured trial's
    baseline runs of the primary metric, each divided by its trial's geometric mean (the
    runs of one trial come from fresh VM instances, so they carry instance-to-instance
    noise too), and the typical number of runs a side."""
    pool, ns = [], []
    for r in rs:
        v = np.asarray([x[r.primary_metric] for x in r.baseline_runs if r.primary_metric in x], float)
        v = v[v > 0]
        if v.size >= 2:
            pool += list(v / np.exp(np.log(v).mean()))
            ns.append(v.size)
    return pool, int(np.median(ns)) if ns else 0


def noise_pools(results: list[TrialResult]) -> dict[str, tuple[list[float], int]]:
    """:func:`noise_pool` per workload over every measured trial given (all agents: the
    baseline is the same configuration whoever the agent is)."""
    by_wl: dict[str, list[TrialResult]] = {}
    for r in results:
        if _measured(r):
            by_wl.setdefault(r.workload, []).append(r)
    return {wl: noise_pool(rs) for wl, rs in by_wl.items()}


def rows(results: list[TrialResult], pools: dict[str, tuple[list[float], int]] | None = None) -> list[dict]:
    """One row per workload. ``best`` is the paper's best-of-K over the attempts that
    completed (``status: done``); ``mean`` is the mean over all K attempts, an attempt that
    failed or was not measured counting as 1.00x (nothing gained); ``failed`` counts failed
    attempts of any kind; ``null95`` is the best-of-K ratio a change-nothing agent reaches
    95 % of the time at this workload's measured noise, and a best inside it is
    ``within_noise`` (harness/scoring.py). ``pools``: the noise pools to use per workload
    (:func:`noise_pools` of a larger set of trials, e.g. every agent of an experiment);
    by default the pool of ``results``' own trials of that workload."""
    by_wl: dict[str, list[TrialResult]] = {}
    for r in results:
        by_wl.setdefault(r.workload, []).append(r)
    out = []
    for wl, rs in sorted(by_wl.items()):
        ok = [r for r in rs if r.status == "done" and _measured(r)]
        best = max(ok, key=lambda r: r.improvement["ratio"]) if ok else None
        pm = rs[0].primary_metric
        k = len(rs)
        pool, n = (pools or {}).get(wl) or noise_pool([r for r in rs if _measured(r)])
        null95 = best_of_k_null(pool, n=n, k=k) if n else None
        b = best.improvement["ratio"] if best else None
        out.append({
            "workload": wl,
            "metric": pm,
            "direction": rs[0].direction,
            "attempts": k,
            "measured": len(ok),
            "failed": sum(r.status == "failed" for r in rs),
            "improved": sum(r.verdict == "improved" for r in ok),
            "baseline": best.summary[pm].baseline["median"] if best else None,
            "tuned": best.summary[pm].tuned["median"] if best else None,
            "best": b,
            "best_ci95": best.improvement.get("ci95") if best else None,
            "best_p": best.improvement.get("p_value") if best else None,
            "best_verdict": best.verdict if best else "",
            "best_indicative": bool(best.verdict_detail.get("indicative")) if best else False,
            "mean": float(np.mean([r.improvement["ratio"] if r in ok else 1.0 for r in rs])) if rs else None,
            "null95": null95,
            "within_noise": scoring.within_noise(b, null95),
            "slo": (best.slo.get("verdict") or ("met" if best.slo.get("tuned_met") else "not_met")) if best else "",
            "steps": sum(r.usage.steps for r in rs),
            "tokens": sum(r.usage.input_tokens + r.usage.output_tokens for r in rs),
            # unknown (None) when any trial's model has no price: never counted as zero
            "cost_usd": (None if any(r.usage.cost_usd is None for r in rs)
                         else round(sum(r.usage.cost_usd for r in rs), 4)),
            "backend": ", ".join(sorted({r.backend or "none" for r in rs})),
            "model": ", ".join(sorted({r.model or "-" for r in rs})),
            "malformed_tool_calls": sum(r.malformed_tool_calls for r in rs),
            "wall_s": round(sum(r.usage.wall_s for r in rs), 1),  # the agent phase, all attempts
            "trial_s": round(sum(r.phases_s.get("total", 0.0) for r in rs), 1),
            "host_cpu_s": (round(sum(r.usage.host_cpu_s for r in rs if r.usage.host_cpu_s is not None), 2)
                           if any(r.usage.host_cpu_s is not None for r in rs) else None),
            "failures": sorted({r.failure_kind for r in rs if r.failure_kind != "none"}),
        })
    return out


def _tukey(vals: np.ndarray) -> tuple[float, float]:
    q1, q3 = np.percentile(vals, [25, 75])
    return q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)


def averages(rs: list[dict]) -> dict:
    """The headline both ways: the paper's average of best-of-K (with and without Tukey
    outliers) and the average of the mean over K attempts; and how many workloads' best
    lies within the noise null."""
    vals = np.array([r["best"] for r in rs if r["best"] is not None], float)
    means = [r["mean"] for r in rs if r["mean"] is not None]
    base = {"average_mean_of_k": float(np.mean(means)) if means else None,
            "within_noise": [r["workload"] for r in rs if r.get("within_noise")],
            "outlier_rule": "Tukey: outside [Q1 - 1.5 IQR, Q3 + 1.5 IQR] of best-of-K improvements"}
    if vals.size == 0:
        return {"average": None, "average_no_outliers": None, "outliers": [], **base}
    lo, hi = _tukey(vals)
    keep = [r for r in rs if r["best"] is not None and lo <= r["best"] <= hi]
    return {
        "average": float(vals.mean()),
        "average_no_outliers": float(np.mean([r["best"] for r in keep])) if keep else None,
        "outliers": [r["workload"] for r in rs if r["best"] is not None and not lo <= r["best"] <= hi],
        **base,
    }


def cost(v) -> str:
    return fmt.usd(v, none="unknown")


def ci_text(ci) -> str:
    return fmt.ci(ci)


def verdict_text(r: dict) -> str:
    v = r.get("best_verdict") or "-"
    return v + ("*" if r.get("best_indicative") and v != "-" else "")


def best_text(r: dict) -> str:
    return fmt.ratio(r["best"]) + (" (within noise)" if r.get("within_noise") else "")


SLO_TEXT = {"met": "met", "not_met": "not met", "inconclusive": "inconclusive", "": "-"}

HEADER = ("| workload | backend | model | metric | baseline | tuned | best x | 95% CI | verdict | mean x | improved "
          "| failed | null95 x | SLO | steps | tokens | cost $ | malformed calls | failures |")


def table_row(r: dict) -> str:
    return (f"| {r['workload']} | {r['backend']} | {r['model']} | {r['metric']} ({r['direction']}) | "
            f"{fmt.metric(r['baseline'])} | {fmt.metric(r['tuned'])} | {best_text(r)} | {ci_text(r['best_ci95'])} | "
            f"{verdict_text(r)} | {fmt.ratio(r['mean'])} | {r['improved']}/{r['attempts']} | {r['failed']}/{r['attempts']} | "
            f"{fmt.ratio(r['null95'])} | {SLO_TEXT.get(r['slo'], r['slo'])} | {r['steps']} | {r['tokens']} | "
            f"{cost(r['cost_usd'])} | {r['malformed_tool_calls']} | {', '.join(r['failures']) or '-'} |")


def footer(av: dict) -> list[str]:
    return [
        f"Average improvement, best of K: {fmt.ratio(av['average'])}x; without outliers: "
        f"{fmt.ratio(av['average_no_outliers'])}x "
        f"(outliers: {', '.join(av['outliers']) or 'none'}; rule: Tukey 1.5 IQR). "
        f"Mean of K (failed attempts count 1.00x): {fmt.ratio(av['average_mean_of_k'])}x.",
        f"Within noise (best-of-K at or below what a change-nothing agent reaches 95 % of the time): "
        f"{', '.join(av['within_noise']) or 'none'}.",
        "Verdicts and SLO verdicts follow harness/scoring.py (README: Scoring rules); * marks an interval from "
        "fewer than 5 runs a side (indicative only).",
    ]


def render(results: list[TrialResult], form: str = "md", manifest: dict | None = None) -> str:
    rs = rows(results)
    av = averages(rs)
    if form == "json":
        return json.dumps({"workloads": rs, **av, **({"manifest": manifest} if manifest else {})}, indent=2)
    if form == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rs[0].keys()) if rs else ["workload"])
        w.writeheader()
        for r in rs:
            w.writerow({k: (json.dumps(v) if isinstance(v, list) else v) for k, v in r.items()})
        return buf.getvalue()
    lines = [HEADER, "|" + "---|" * HEADER.count(" | ") + "---|"]
    lines += [table_row(r) for r in rs]
    lines.append("")
    lines += footer(av)
    g = [r for r in results if r.goal is not None]
    if g:
        ok = [r for r in g if r.goal.get("correct")]
        steps = [r.goal["step"] for r in g if r.goal.get("step") is not None]
        lines.append(f"Goal inference (--no-slo-hint): {len(ok)}/{len(g)} correct"
                     + (f", declared at step {fmt.num(float(np.mean(steps)), 3)} on average" if steps else "")
                     + (f"; wrong: {', '.join(sorted(r.workload for r in g if not r.goal.get('correct')))}"
                        if len(ok) < len(g) else ""))
    return "\n".join(lines)


def load_reference(ref_dir: Path) -> dict:
    """A published reference (``results/<profile-name>/``): its ``report.json`` (rows per
    agent, as :func:`harness.experiments.rq1` writes them, or one job's rows) and
    ``manifest.json``."""
    rep = json.loads((ref_dir / "report.json").read_text())
    man = json.loads((ref_dir / "manifest.json").read_text()) if (ref_dir / "manifest.json").is_file() else None
    by_agent = rep.get("agents") or {"": {"workloads": rep.get("workloads", [])}}
    return {"dir": str(ref_dir), "agents": by_agent, "manifest": man}


def against(results: list[TrialResult], manifest: dict | None, ref: dict, form: str = "md") -> str:
    """A job's rows beside the reference's rows of the same agent (or of every reference
    agent when the job's agent is not in it) for the workloads both have; a warning first
    when the machine profiles differ (harness/manifest.py)."""
    from .manifest import differences

    mine = {r["workload"]: r for r in rows(results)}
    agents = {r.agent for r in results}
    refs = {a: v for a, v in ref["agents"].items() if a.split(" (")[0] in agents} or ref["agents"]
    warn = []
    if manifest is None or ref["manifest"] is None:
        warn.append("warning: a machine profile is missing (job or reference): the numbers may not be comparable")
    else:
        diff = differences(manifest, ref["manifest"])
        if diff:
            warn.append("warning: the job's machine profile differs from the reference's: " + "; ".join(diff))
    out_rows = []
    for who, d in refs.items():
        for rr in d["workloads"]:
            m = mine.get(rr["workload"])
            if m is None:
                continue
            out_rows.append({"workload": rr["workload"], "reference_agent": who or "-", "job": m, "reference": rr})
    if form == "json":
        return json.dumps({"warnings": warn, "rows": out_rows, "reference": ref["dir"]}, indent=2)
    lines = warn + ([""] if warn else []) + [
        f"Against {ref['dir']}:",
        "| workload | reference agent | job best x | job 95% CI | job verdict | job mean x | ref best x | ref 95% CI "
        "| ref verdict | ref mean x | ref null95 x |",
        "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in out_rows:
        j, f = r["job"], r["reference"]
        lines.append(f"| {r['workload']} | {r['reference_agent']} | {best_text(j)} | {ci_text(j['best_ci95'])} | "
                     f"{verdict_text(j)} | {fmt.ratio(j['mean'])} | {best_text(f)} | {ci_text(f.get('best_ci95'))} | "
                     f"{verdict_text(f)} | {fmt.ratio(f.get('mean'))} | {fmt.ratio(f.get('null95'))} |")
    if not out_rows:
        lines.append("(no workload in common)")
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
