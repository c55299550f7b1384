"""Known answers of the text people read, built from raw floats such as a median of two
runs (2.8529999999999998) and a p-value (0.076522500475059): progress lines, trajectory
lines, `schedcp try`, the report table, the budget message, scx-search's messages and the
TUI's step titles read a few significant digits (harness/fmt.py), while the JSON beside
them keeps every digit."""

import io
import json

import pytest

from harness import report, scoring, steps
from harness.job import Display
from harness.limits import LimitExceeded
from harness.try_sched import format_result

RAW = 2.8529999999999998  # statistics.median([2.853, 2.853]) as `make run` printed it
P = 0.076522500475059


def plain(kind: str, data: dict) -> str:
    out = io.StringIO()
    Display("plain", stream=out)(kind, data)
    return out.getvalue()


def test_progress_lines_are_short_and_jsonl_keeps_every_digit():
    assert plain("measure", {"trial": "t", "role": "baseline", "index": 1, "warmup": False, "value": RAW}) == \
        "[t] baseline run 1: 2.853\n"
    assert plain("measure", {"trial": "t", "role": "tuned", "index": 0, "warmup": True, "value": 123456.7}) == \
        "[t] tuned    run 0 (warm-up): 123500\n"
    assert plain("trial_end", {"trial": "t", "status": "done", "failure_kind": "none", "ratio": 1.0234567}) == \
        "[t] done (none) improvement 1.02x\n"
    assert plain("warning", {"job": "j", "p": P, "n": 3}) == "warning: job=j p=0.07652 n=3\n"
    out = io.StringIO()
    Display("jsonl", stream=out)("measure", {"trial": "t", "value": RAW})
    assert json.loads(out.getvalue()) == {"event": "measure", "trial": "t", "value": RAW}


@pytest.mark.parametrize("rec,want", [
    ({"type": "candidate", "label": "sched:scx_simple", "score": RAW, "errors": []},
     "candidate sched:scx_simple: 2.853"),
    ({"type": "candidate", "label": "sched:scx_qmap", "score": None, "errors": ["scx_qmap: cannot start"]},
     "candidate sched:scx_qmap: no score (scx_qmap: cannot start)"),
    ({"type": "trial_run", "metrics": {"wall_s": RAW, "ops_per_s": 123456.7}},
     "trial run wall_s=2.853, ops_per_s=123500"),
    ({"type": "trial_run", "exit_code": 0, "duration_s": 12.345678, "error": None}, "trial run exit 0 in 12.35 s"),
    ({"type": "limit", "t": 3.0, "kind": "wall_s", "value": 600.0123456, "limit": 600},
     'limit {"kind": "wall_s", "value": 600.0, "limit": 600}'),
])
def test_trajectory_lines(rec, want):
    assert steps.step_text(rec) == want


def test_try_result_lines():
    imp = {"ratio": 1.0234567, "ci95": [0.98765, 1.0612345], "p_value": P, "n": 5}
    out = {"primary_metric": "wall_s", "direction": "lower", "improvement": imp, "order": ["DS", "SD"],
           "score": scoring.verdict(imp["ratio"], imp["ci95"], imp["n"])}
    assert format_result(out) == [
        "wall_s (lower is better): improvement 1.02x [95% CI 0.988, 1.06], paired t-test p=0.077, "
        "5 rounds in order DS SD",
        "verdict: inconclusive (noise floor 3%: CI [0.988, 1.06] neither clear of 1 beyond the noise band "
        "nor inside it)"]


def test_verdict_rules_quote_ratios_to_three_digits():
    assert scoring.verdict(1.0834, [1.0412345, 1.1256789], 5)["rule"] == "CI above 1 and ratio >= 1.03"
    assert scoring.verdict(0.9, [0.85, 0.95], 5)["rule"] == "CI below 1 and ratio <= 0.971"
    assert scoring.verdict(1.0, [0.99, 1.01], 5)["rule"] == "CI inside the noise band [0.971, 1.03]"


def test_report_row_and_json():
    row = {"workload": "a", "backend": "none", "model": "-", "metric": "wall_s", "direction": "lower",
           "baseline": RAW, "tuned": 2.1234567, "best": 1.3435, "best_ci95": [1.2012345, 1.4987654],
           "within_noise": False, "best_verdict": "improved", "best_indicative": False, "mean": 1.1717,
           "improved": 1, "attempts": 2, "failed": 0, "null95": 1.0456789, "slo": "met", "steps": 4,
           "tokens": 1234, "cost_usd": 0.012345, "malformed_tool_calls": 0, "failures": []}
    assert report.table_row(row) == ("| a | none | - | wall_s (lower) | 2.853 | 2.123 | 1.34 | [1.20, 1.50] | improved | "
                                     "1.17 | 1/2 | 0/2 | 1.05 | met | 4 | 1234 | 0.0123 | 0 | - |")
    assert report.cost(None) == "unknown"
    av = {"average": 1.3435, "average_no_outliers": None, "outliers": [], "average_mean_of_k": 1.1717,
          "within_noise": []}
    assert report.footer(av)[0].startswith("Average improvement, best of K: 1.34x; without outliers: -x ")
    from harness.models import MetricStats, TrialResult

    r = TrialResult(trial_id="a__x__a0", workload="a", agent="x", primary_metric="wall_s", direction="lower",
                    status="done", summary={"wall_s": MetricStats(baseline={"median": RAW}, tuned={"median": 2.5})},
                    improvement={"ratio": 1.0234567, "ci95": [0.98765, 1.0612345], "p_value": P})
    w = json.loads(report.render([r], "json"))["workloads"][0]
    assert w["best"] == 1.0234567 and w["baseline"] == RAW and w["best_p"] == P  # JSON: every digit


@pytest.mark.parametrize("value,limit,want", [
    (600.0123456, 600.0, "wall_s budget exceeded: 600.012 > 600"),  # 4 digits would read 600 > 600
    (612.345678, 600.0, "wall_s budget exceeded: 612.3 > 600"),
    (123457, 100000, "wall_s budget exceeded: 123457 > 100000"),  # counts stay exact
])
def test_budget_message(value, limit, want):
    assert str(LimitExceeded("wall_s", value, limit)) == want


def test_scx_search_messages(tmp_path, monkeypatch):
    from harness.agents import scx_search
    from harness.agents.base import AgentContext, Trajectory
    from harness.limits import BudgetTracker
    from harness.models import Budget
    from harness.workload import load_workload
    from sandbox.guest import SchedulerError

    state = {"sched": None}

    def start(sb, name):
        if name == "scx_qmap":
            raise SchedulerError("scx_qmap did not reach state enabled in 30s")
        state["sched"] = name

    monkeypatch.setattr(scx_search, "list_schedulers", lambda sb: ["scx_simple", "scx_qmap"])
    monkeypatch.setattr(scx_search, "start_scheduler", start)
    monkeypatch.setattr(scx_search, "stop_scheduler", lambda sb: state.update(sched=None))
    traj = Trajectory(tmp_path / "t.jsonl")
    ctx = AgentContext(sandbox=None, workload=load_workload("hackbench"), instruction="", files_dir=tmp_path,
                       budget=BudgetTracker(Budget(steps=10)), trajectory=traj,
                       trial_run=lambda: {"wall_s": RAW if state["sched"] == "scx_simple" else 4.9})
    scx_search.ScxSearch(schedulers=["scx_simple", "scx_qmap"], presets={}).run(ctx)
    msgs = [json.loads(x)["text"] for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert msgs == ["candidate default: 4.9", "candidate sched:scx_simple: 2.853",
                    "sched:scx_qmap: cannot start: scx_qmap did not reach state enabled in 30s",
                    "candidate sched:scx_qmap: no score", "keeping sched:scx_simple (score 2.853)"]
    assert ctx.notes["scores"]["sched:scx_simple"] == RAW  # the numbers themselves are not rounded


def test_tui_step_titles():
    from tui import model

    s = model.to_step(0, {"t": 1.0, "type": "trial_run", "metrics": {"wall_s": RAW}, "duration_s": 2.9012345})
    assert s.title == 'trial_run {"wall_s": 2.853} (2.901s)'
    s = model.to_step(1, {"t": 1.0, "type": "bandit", "arm": "default", "ratio": 1.0234567, "counts": {"a": 2}})
    assert s.title == 'bandit {"arm": "default", "ratio": 1.023, "counts": {"a": 2}}'
    s = model.to_step(2, {"t": 1.0, "type": "command", "cmd": "true", "returncode": 0, "duration_s": 0.0123456})
    assert s.title == "$ true  (rc 0, 0.012s)"
    s = model.to_step(3, {"t": 1.0, "type": "measure", "round": 2, "role": "tuned", "warmup": False,
                          "metrics": {"wall_s": RAW}, "duration_s": 3.2161})
    assert s.title == 'measure tuned #2 {"wall_s": 2.853} (3.216s)'


def test_workloads_run_prints_short_runs_and_summary(monkeypatch, capsys):
    import contextlib
    from types import SimpleNamespace

    from harness import bench, cli, workload
    from harness.bench import RunResult, WorkloadRuns

    runs = [RunResult(0, True, {"wall_s": 3.0512345}, 3.1), RunResult(0, False, {"wall_s": RAW}, 2.9),
            RunResult(1, False, {"wall_s": 2.9012345}, 3.0)]

    def run_workload(sb, wl, size, repeat=None, on_run=None):
        for r in runs:
            on_run(r)
        return WorkloadRuns(wl.name, size, runs)

    backend = SimpleNamespace(open=lambda **kw: contextlib.nullcontext(object()))
    monkeypatch.setattr(cli, "_backend", lambda a: backend)
    monkeypatch.setattr(workload, "backend_refusal", lambda spec, be: None)
    monkeypatch.setattr(bench, "run_workload", run_workload)
    assert cli.main(["workloads", "run", "hackbench"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == ["run 0 (warm-up, dropped): wall_s=3.051", "run 0: wall_s=2.853", "run 1: wall_s=2.901"]
    assert lines[3].split() == ["METRIC", "MEDIAN", "MEAN", "STDEV", "CV", "N"]
    # median and mean of 2.853 and 2.9012345 (2.8771...), sample stdev 0.0341..., CV 1.19 %
    assert lines[4].split() == ["wall_s", "(s)", "2.877", "2.877", "0.03411", "1.2%", "2"]
