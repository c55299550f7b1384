"""The paper's three experiments, as tables built from job folders only.

- RQ1: improvement per workload and agent/model (best of K with its verdict, mean of K,
  attempts improved, failed, the noise null pooled over every group's baseline runs of
  the workload, averages both ways), from :mod:`harness.report`.
- RQ2: goal inference (trials run with ``--no-slo-hint``): per agent/model the success
  rate x/n and %, the mean step at which the goal was declared, and the workloads it got
  wrong (or never declared).
- RQ3: the ``mcp`` and ``bash`` interfaces side by side per workload: mean steps, mean
  tool calls, and mean improvement.

Every table shows the backend (anthropic, openai, cli, mcp, none) and the model of its
trials; ``group_by`` (``--group-by``, comma-separated from agent, backend, model,
interface; default ``agent,model``) chooses what a group is.

``schedcp experiment rqN`` runs the grid (one job per agent/model/interface) and records
the job ids in ``jobs/experiments/<rq>-<stamp>.json``; ``--from`` rebuilds a table from
existing jobs.
"""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np

from . import fmt, report
from .models import TrialResult


GROUP_FIELDS = ("agent", "backend", "model", "interface")
DEFAULT_GROUP = ("agent", "model")


def _who(r: TrialResult, by: tuple[str, ...] = DEFAULT_GROUP) -> str:
    if tuple(by) == DEFAULT_GROUP:
        return r.agent + (f" ({r.model})" if r.model else "")
    return " / ".join(str(getattr(r, f) or "-") for f in by)


def _ids(rs: list[TrialResult]) -> dict:
    """The backend(s) and model(s) of a group's trials."""
    return {"backend": ", ".join(sorted({r.backend or "none" for r in rs})),
            "model": ", ".join(sorted({r.model or "-" for r in rs}))}


def parse_group(spec: str | None) -> tuple[str, ...]:
    by = tuple(x.strip() for x in (spec or "").split(",") if x.strip()) or DEFAULT_GROUP
    bad = [x for x in by if x not in GROUP_FIELDS]
    if bad:
        raise ValueError(f"cannot group by {', '.join(bad)}: choose from {', '.join(GROUP_FIELDS)}")
    return by


def rq1(results: list[TrialResult], by: tuple[str, ...] = DEFAULT_GROUP) -> dict:
    groups: dict[str, list[TrialResult]] = defaultdict(list)
    for r in results:
        groups[_who(r, by)].append(r)
    pools = report.noise_pools(results)  # every group's baseline runs: one null per workload
    out = {}
    for who, rs in sorted(groups.items()):
        rows = report.rows(rs, pools)
        out[who] = {**_ids(rs), "workloads": rows, **report.averages(rows)}
    return out


def rq2(results: list[TrialResult], by: tuple[str, ...] = DEFAULT_GROUP) -> dict:
    groups: dict[str, list[TrialResult]] = defaultdict(list)
    for r in results:
        if not r.slo_hint and r.goal is not None:
            groups[_who(r, by)].append(r)
    out = {}
    for who, rs in sorted(groups.items()):
        ok = [r for r in rs if r.goal.get("correct")]
        steps = [r.goal["step"] for r in rs if r.goal.get("step") is not None]
        out[who] = {**_ids(rs),
            "n": len(rs), "correct": len(ok), "rate": len(ok) / len(rs) if rs else None,
            "mean_steps": float(np.mean(steps)) if steps else None,
            "wrong": sorted({r.workload + ("" if r.goal.get("declared") else " (none declared)")
                             for r in rs if not r.goal.get("correct")}),
        }
    return out


def rq3(results: list[TrialResult], by: tuple[str, ...] = DEFAULT_GROUP) -> dict:
    cells: dict[tuple[str, str], dict[str, list[TrialResult]]] = defaultdict(lambda: defaultdict(list))
    by = tuple(f for f in by if f != "interface") or DEFAULT_GROUP  # the interfaces are the columns
    for r in results:
        cells[(r.workload, _who(r, by))][r.interface].append(r)
    out = []
    for (wl, who), by_if in sorted(cells.items()):
        row = {"workload": wl, "agent": who, **_ids([r for rs in by_if.values() for r in rs])}
        for iface in ("mcp", "bash"):
            rs = by_if.get(iface, [])
            ratios = [r.improvement["ratio"] for r in rs if r.improvement.get("ratio")]
            row[iface] = {"trials": len(rs),
                          "steps": float(np.mean([r.usage.steps for r in rs])) if rs else None,
                          "tool_calls": float(np.mean([r.tool_calls for r in rs])) if rs else None,
                          "improvement": float(np.mean(ratios)) if ratios else None}
        out.append(row)
    return {"rows": out}


def render(rq: str, results: list[TrialResult], form: str = "md", by: tuple[str, ...] = DEFAULT_GROUP) -> str:
    data = {"rq1": rq1, "rq2": rq2, "rq3": rq3}[rq](results, by)
    if form == "json":
        return json.dumps(data, indent=2)
    lines: list[str] = []
    if rq == "rq1":
        lines.append("| agent | backend | model | workload | baseline | tuned | best x | 95% CI | verdict | mean x "
                     "| improved | failed | null95 x | SLO | steps | malformed calls | cost $ | agent wall s | host CPU s |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for who, d in data.items():
            for r in d["workloads"]:
                lines.append(f"| {who} | {d['backend']} | {d['model']} | {r['workload']} | "
                             f"{fmt.metric(r['baseline'])} | {fmt.metric(r['tuned'])} | "
                             f"{report.best_text(r)} | {report.ci_text(r['best_ci95'])} | {report.verdict_text(r)} | "
                             f"{fmt.ratio(r['mean'])} | {r['improved']}/{r['attempts']} | {r['failed']}/{r['attempts']} | "
                             f"{fmt.ratio(r['null95'])} | {report.SLO_TEXT.get(r['slo'], r['slo'])} | "
                             f"{r['steps']} | {r['malformed_tool_calls']} | {report.cost(r['cost_usd'])} | "
                             f"{fmt.seconds(r.get('wall_s'))} | {fmt.seconds(r.get('host_cpu_s'))} |")
        lines.append("")
        for who, d in data.items():
            lines.append(f"{who}: average best of K {fmt.ratio(d['average'])}x, without outliers "
                         f"{fmt.ratio(d['average_no_outliers'])}x "
                         f"(outliers: {', '.join(d['outliers']) or 'none'}; Tukey 1.5 IQR); mean of K "
                         f"{fmt.ratio(d['average_mean_of_k'])}x; within noise: {', '.join(d['within_noise']) or 'none'}")
    elif rq == "rq2":
        lines.append("| agent | backend | model | goal inferred | rate | mean steps to declare | wrong |")
        lines.append("|---|---|---|---|---|---|---|")
        for who, d in data.items():
            lines.append(f"| {who} | {d['backend']} | {d['model']} | {d['correct']}/{d['n']} | {fmt.percent(d['rate'])} | "
                         f"{fmt.num(d['mean_steps'], 3)} | {', '.join(d['wrong']) or '-'} |")
        if not data:
            lines.append("(no trials run with --no-slo-hint in these jobs)")
    else:
        lines.append("| workload | agent | backend | model | mcp steps | bash steps | mcp tool calls | bash tool calls "
                     "| mcp x | bash x |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|")
        for r in data["rows"]:
            m, b = r["mcp"], r["bash"]
            lines.append(f"| {r['workload']} | {r['agent']} | {r['backend']} | {r['model']} | {fmt.num(m['steps'], 3)} | "
                         f"{fmt.num(b['steps'], 3)} | {fmt.num(m['tool_calls'], 3)} | {fmt.num(b['tool_calls'], 3)} | "
                         f"{fmt.ratio(m['improvement'])} | {fmt.ratio(b['improvement'])} |")
    if form == "csv":
        return "\n".join(",".join(c.strip() for c in ln.strip("|").split("|"))
                         for ln in lines if ln.startswith("|") and not ln.startswith("|---"))
    return "\n".join(lines)
