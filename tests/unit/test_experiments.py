"""RQ tables from trial results (harness/experiments.py); the VM tests build them from real jobs."""

from harness.experiments import render, rq1, rq2, rq3
from harness.models import MetricStats, TrialResult


def result(wl, agent="claude", model="m1", attempt=0, ratio=1.2, iface="bash", steps=4, calls=6, goal=None):
    pm = "wall_s"
    s = {pm: MetricStats(baseline={"median": 10.0}, tuned={"median": 10.0 / ratio})}
    r = TrialResult(trial_id=f"{wl}__{agent}__a{attempt}", workload=wl, agent=agent, model=model, attempt=attempt,
                    interface=iface, primary_metric=pm, direction="lower", summary=s,
                    improvement={"ratio": ratio, "ci95": [ratio - 0.1, ratio + 0.1], "p_value": 0.05},
                    slo={"tuned_met": ratio > 1.05}, tool_calls=calls, slo_hint=goal is None, goal=goal)
    r.usage.steps = steps
    return r


def goal(ok, step):
    return {"declared": {"metric": "x", "direction": "lower"} if ok is not None else None, "correct": bool(ok),
            "step": step}


def test_rq1_groups_by_agent_and_model_best_of_k():
    rs = [result("a", ratio=1.1), result("a", attempt=1, ratio=1.5), result("b", ratio=0.9),
          result("a", model="m2", ratio=1.0)]
    t = rq1(rs)
    assert set(t) == {"claude (m1)", "claude (m2)"}
    a = next(w for w in t["claude (m1)"]["workloads"] if w["workload"] == "a")
    assert a["best"] == 1.5 and abs(a["mean"] - 1.3) < 1e-9 and a["attempts"] == 2
    assert abs(t["claude (m1)"]["average"] - 1.2) < 1e-9
    md = render("rq1", rs)
    assert "| claude (m1) | anthropic | m1 | a | 10 | 6.667 | 1.50 | [1.40, 1.60] |" in md


def test_rq2_rate_steps_and_wrong_workloads():
    rs = [result("a", goal=goal(True, 2)), result("b", goal=goal(False, 4)), result("c", goal=goal(None, None)),
          result("d", goal=goal(True, 3), model="m2"), result("e")]  # e had the hint: not in RQ2
    t = rq2(rs)
    assert t["claude (m1)"] == {"backend": "anthropic", "model": "m1", "n": 3, "correct": 1, "rate": 1 / 3, "mean_steps": 3.0,
                                "wrong": ["b", "c (none declared)"]}
    assert t["claude (m2)"]["rate"] == 1.0
    md = render("rq2", rs)
    assert "| claude (m1) | anthropic | m1 | 1/3 | 33% | 3 | b, c (none declared) |" in md
    assert render("rq2", [result("e")]).endswith("(no trials run with --no-slo-hint in these jobs)")


def test_rq3_mcp_and_bash_side_by_side():
    rs = [result("a", iface="mcp", steps=3, calls=5, ratio=1.4), result("a", iface="bash", steps=8, calls=9, ratio=1.2),
          result("a", iface="bash", attempt=1, steps=6, calls=7, ratio=1.0)]
    (row,) = rq3(rs)["rows"]
    assert row["mcp"] == {"trials": 1, "steps": 3.0, "tool_calls": 5.0, "improvement": 1.4}
    assert row["bash"]["steps"] == 7.0 and abs(row["bash"]["improvement"] - 1.1) < 1e-9
    csv = render("rq3", rs, "csv").splitlines()
    assert csv[0].startswith("workload,agent,backend,model,mcp steps")
    assert csv[1] == "a,claude (m1),anthropic,m1,3,7,5,8,1.40,1.10"


def test_tables_group_by_backend_and_model_and_show_unknown_cost():
    rs = [result("a", ratio=1.1), result("a", agent="openai", model="gemma", ratio=1.3),
          result("a", agent="cli:claude-code", model="m1", ratio=1.2)]
    rs[1].usage.cost_usd = None  # no price for this model
    t = rq1(rs, ("backend",))
    assert set(t) == {"anthropic", "openai", "cli"}
    assert t["openai"]["model"] == "gemma" and t["openai"]["workloads"][0]["cost_usd"] is None
    md = render("rq1", rs, by=("backend", "model"))
    assert "| openai / gemma | openai | gemma | a |" in md and next(x for x in md.splitlines() if x.startswith("| openai")).endswith("| unknown | 0.000 | - |")
    assert set(rq1(rs, ("model",))) == {"m1", "gemma"}
    assert rq1(rs, ("model",))["m1"]["backend"] == "anthropic, cli"


def measured(wl, agent, attempt, baseline, ratio=1.0, status="done", kind="none", verdict="no_change"):
    r = result(wl, agent=agent, attempt=attempt, ratio=ratio)
    r.status, r.failure_kind, r.verdict = status, kind, verdict
    r.baseline_runs = [{"wall_s": v} for v in baseline]
    return r


def test_rq1_failed_attempts_count_and_the_noise_null_is_pooled_over_agents():
    noisy = [10.0, 12.0, 9.0, 11.5, 8.5]
    rs = [measured("a", "linux-default", k, noisy) for k in range(3)]
    rs += [measured("a", "scx-search", 0, [10.0, 10.0, 10.0, 10.0, 10.1], ratio=1.08, verdict="improved"),
           measured("a", "scx-search", 1, [], ratio=1.5, status="failed", kind="agent_error")]
    t = rq1(rs, by=("agent",))
    s = t["scx-search"]["workloads"][0]
    # the failed attempt is an attempt: not best-of-K, counted as failed and as 1.00x in the mean
    assert s["attempts"] == 2 and s["failed"] == 1 and s["best"] == 1.08 and s["improved"] == 1
    assert abs(s["mean"] - (1.08 + 1.0) / 2) < 1e-9
    # scx-search's own baseline runs are nearly noiseless, but the null is the workload's,
    # from every agent's baseline runs: 1.08x is within what luck gives at this noise
    own = __import__("harness.report", fromlist=["rows"]).rows([r for r in rs if r.agent == "scx-search"])[0]
    assert own["null95"] < 1.01 and own["within_noise"] is False
    assert s["null95"] > 1.08 and s["within_noise"] is True
    assert t["scx-search"]["within_noise"] == ["a"] and t["scx-search"]["average_mean_of_k"] == s["mean"]
