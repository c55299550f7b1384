"""Leak-free goal inference (RQ2) end to end: a `claude` trial with --no-slo-hint in a real
VM, the model a local scripted Messages API server. One job, two attempts:

- a0 observes (the guest's spec names no metric; run_workload returns what hackbench
  printed, not named metrics), then tunes through bash (sysctl -w, a file in /etc)
  BEFORE declaring, then declares the right goal: not correct, the changes recorded;
- a1 only observes, then declares a catch-all ("completion time or throughput or p99
  latency"): not correct, though the goal is among the alternatives.

(An agent that observes and then declares correctly is scored correct: test_rq.py's
test_goal_declarations_are_scored.)"""

import json

from harness.job import create_job, run_job
from harness.models import Budget, JobConfig
from tests.fake_anthropic import tool_use
from tests.vm.test_harness import api, events  # noqa: F401  (fixture)

SPEC = "/opt/schedcp/workloads/hackbench"


def test_changes_before_declaring_and_catch_alls_are_not_correct(backend, api, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("SCHEDCP_JOBS", str(tmp_path / "jobs"))
    script = [
        # attempt 0: observe, then tune through bash before declaring
        tool_use(("bash", {"command": f"grep -cE '^(goal|slo|primary|metrics|noise):' {SPEC}/workload.yaml || true; "
                                      f"grep -ci 'wall_s' {SPEC}/workload.yaml {SPEC}/README.md || true"})),
        tool_use(("run_workload", {})),
        tool_use(("bash", {"command": "sysctl -w kernel.sched_autogroup_enabled=0 && "
                                      "echo kernel.sched_autogroup_enabled=0 > /etc/sysctl.d/90-tune.conf"})),
        tool_use(("declare_goal", {"metric": "completion time", "direction": "lower",
                                   "rationale": "hackbench prints the time to pass all messages"})),
        tool_use(("finish", {"summary": "autogroup off"})),
        # attempt 1: observe only, then a catch-all declaration
        tool_use(("bash", {"command": f"cat {SPEC}/README.md; cat /proc/sys/kernel/sched_autogroup_enabled"})),
        tool_use(("declare_goal", {"metric": "completion time or throughput or p99 latency", "direction": "lower",
                                   "rationale": "one of these"})),
        tool_use(("finish", {})),
    ]
    api(script)
    cfg = JobConfig(job_id="rq2-leaks", workloads=["hackbench"], agent="claude", model="claude-sonnet-4-6",
                    attempts=2, repeat=1, slo_hint=False, budget=Budget(steps=8, wall_s=900))
    d = create_job(cfg, backend)
    res = {r.attempt: r for r in run_job(d, cfg, backend, lambda k, e: None, agent_kwargs={"backoff_s": 0.1})}
    tuned, catch = res[0], res[1]
    for r in (tuned, catch):
        assert r.goal is not None and r.goal.get("declared"), (r.attempt, r.failure_kind, r.failure)

    # a0: the right goal, declared after a change: not correct, and the change is recorded
    g = tuned.goal
    assert g["metric_ok"] is True and g["direction_ok"] is True and g["correct"] is False, g
    whats = [c["what"] for c in g["changes_before_declare"]]
    assert whats == ["sysctl kernel.sched_autogroup_enabled: 1 -> 0", "file /etc/sysctl.d/90-tune.conf"], g
    assert {c["tool"] for c in g["changes_before_declare"]} == {"bash"} and g["first_change_step"] == 3, g
    assert g["watch_errors"] == [] and g["reason"].startswith("changed the guest before declaring"), g
    assert tuned.tuned_config["sysctl_changed"] == {"kernel.sched_autogroup_enabled": "0"}
    ev0 = events(d / "hackbench__claude__a0" / "trajectory.jsonl")
    outs = [e for e in ev0 if e["type"] == "tool_result"]
    assert json.loads(outs[0]["output"])["stdout"].split() == ["0", f"{SPEC}/workload.yaml:0", f"{SPEC}/README.md:0"]
    run = json.loads(outs[1]["output"])  # what hackbench printed, not the harness's metrics
    assert run["exit_code"] == 0 and "Time:" in run["output"] and run["elapsed_s"] > 0, run
    assert "wall_s" not in outs[1]["output"] and "schedcp_wall_s" not in run["output"]
    instruction = next(e for e in ev0 if e["type"] == "instruction")["text"]
    assert "wall_s" not in instruction and "ONE metric" in instruction
    # running the workload wrote nothing that counts as a change; the read took seconds, not minutes
    watch = [e for e in ev0 if e["type"] == "goal_watch"]
    assert [e["tool"] for e in watch] == ["", "bash", "run_workload", "bash", "(between tool calls)"]
    assert [bool(e["changes"]) for e in watch] == [False, False, False, True, False]
    assert max(e["duration_s"] for e in watch) < 60, watch

    # a1: a catch-all is not correct, although nothing changed and the goal is among its parts
    g = catch.goal
    assert g["changes_before_declare"] == [] and g["catch_all"] is True and g["correct"] is False, g
    assert g["reason"].startswith("a list of alternatives"), g
    assert catch.tuned_config["sysctl_changed"] == {}
