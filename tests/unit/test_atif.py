"""ATIF export (harness/atif.py, `schedcp export --format atif`, `schedcp run --atif`),
validated with Harbor's own ATIF models and validator (PyPI `harbor`, a test-only
dependency: see the README) on recorded trial folders of every agent kind:

- ``tests/fixtures/atif-jobs/claude-scripted`` and ``cli-claude-code-scripted``: the real
  trial, agent and CLI (Claude Code) driven by a scripted Anthropic server
  (tests/fixtures/make_atif_trials.py);
- ``tests/fixtures/sample-jobs/20261129-093302-scx-search``: an scx-search job recorded
  in VMs;
- ``tests/fixtures/atif-jobs/20261204-191711-linux-default``: a linux-default control
  trial recorded in VMs.

Harbor missing is a failure here, not a skip."""

import json
import shutil
from pathlib import Path

import pytest

try:
    from harbor.models.trajectories import Trajectory as HarborTrajectory
    from harbor.utils.trajectory_validator import TrajectoryValidator
except ImportError as e:  # a collection error: the tests fail, they do not skip
    raise ImportError("harbor is needed to validate ATIF exports: pip install --no-deps --ignore-requires-python "
                      "harbor==0.25.0 (see the README)") from e

from harness.atif import ATIF_FILE, ATIF_VERSION, trial_trajectory, write_trial
from harness.cli import main
from harness.limits import price
from harness.models import TrialConfig
from harness.trial import read_result, run_trial
from tests.unit.test_trial_errors import _Backend  # a trial that ends at its first VM

FIX = Path(__file__).resolve().parents[1] / "fixtures"
CLAUDE = FIX / "atif-jobs" / "claude-scripted" / "hackbench__claude__a0"
CLI = FIX / "atif-jobs" / "cli-claude-code-scripted" / "hackbench__cli-claude-code__a0"
SCX_JOB = FIX / "sample-jobs" / "20261129-093302-scx-search"
LINUX_DEFAULT = FIX / "atif-jobs" / "20261204-191711-linux-default" / "hackbench__linux-default__a0"


def records(trial_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (trial_dir / "trajectory.jsonl").read_text().splitlines()]


def exported(trial_dir: Path, tmp_path: Path) -> dict:
    """The trial's export, written to a file and checked by Harbor's validator and models."""
    path = write_trial(trial_dir, tmp_path)
    v = TrajectoryValidator()
    assert v.validate(path), v.get_errors()
    data = json.loads(path.read_text())
    HarborTrajectory.model_validate(data)
    assert data["schema_version"] == ATIF_VERSION
    return data


def calls(data: dict) -> list[dict]:
    return [c for s in data["steps"] for c in s.get("tool_calls", [])]


def results(data: dict) -> dict[str, dict]:
    return {r["source_call_id"]: r for s in data["steps"] for r in (s.get("observation") or {}).get("results", [])}


def check_outcome(data: dict, trial_dir: Path) -> None:
    """Our extras and the final metrics are the trial's result.json."""
    res = read_result(trial_dir)
    x = data["extra"]
    assert (x["trial_id"], x["workload"], x["status"], x["failure_kind"]) == (
        res.trial_id, res.workload, res.status, res.failure_kind)
    assert x["verdict"] == res.verdict and x["ratio"] == res.improvement.get("ratio")
    assert x["ci95"] == res.improvement.get("ci95") and x["tuned_config"] == res.tuned_config
    assert x["job_id"] == trial_dir.parent.name and data["session_id"] == f"{trial_dir.parent.name}/{res.trial_id}"
    fm = data["final_metrics"]
    assert fm["total_prompt_tokens"] == res.usage.input_tokens
    assert fm["total_completion_tokens"] == res.usage.output_tokens
    assert fm.get("total_cost_usd") == res.usage.cost_usd and fm["extra"]["budget_steps"] == res.usage.steps
    assert fm["total_steps"] == len(data["steps"])
    assert data["agent"]["name"] == res.agent and data["agent"].get("model_name") == res.model


def test_claude_trial(tmp_path):
    data = exported(CLAUDE, tmp_path)
    check_outcome(data, CLAUDE)
    recs = records(CLAUDE)
    replies = [r for r in recs if r["type"] == "message" and r["role"] == "assistant"]
    steps = data["steps"]
    # the instruction, the retried 529 (a system step), then one agent step per model reply
    assert [s["source"] for s in steps] == ["user", "system"] + ["agent"] * len(replies)
    assert steps[0]["message"] == next(r["text"] for r in recs if r["type"] == "instruction")
    assert "529" in steps[1]["message"]
    agent = steps[2:]
    assert agent[0]["message"] == "First I check what the guest can see."
    assert all(s["llm_call_count"] == 1 and s["model_name"] == "claude-sonnet-4-6" for s in agent)
    # every tool call the model made, in order, with its arguments; each answered
    assert [c["function_name"] for c in calls(data)] == [b["name"] for r in replies for b in r["content"]
                                                        if b["type"] == "tool_use"]
    assert [c["function_name"] for c in calls(data)] == ["bash", "sysctl_set", "bash", "bash", "write_file",
                                                        "run_workload", "finish"]
    by_id = results(data)
    assert set(by_id) == {c["tool_call_id"] for c in calls(data)}
    outputs = {r["id"]: r["output"] for r in recs if r["type"] == "tool_result"}
    for cid, out in outputs.items():  # observations are exactly what the model got back
        assert by_id[cid]["content"] == out
    bad = by_id[calls(data)[1]["tool_call_id"]]  # sysctl_set is not offered on the bash interface
    assert bad["content"].startswith("error: malformed tool call") and "unknown tool 'sysctl_set'" in bad["content"]
    autogroup = by_id[calls(data)[2]["tool_call_id"]]
    assert "kernel.sched_autogroup_enabled = 0" in autogroup["content"]
    assert [e["cmd"] for e in autogroup["extra"]["events"]] == ["sysctl -w kernel.sched_autogroup_enabled=0"]
    run = by_id[calls(data)[5]["tool_call_id"]]
    assert json.loads(run["content"]) == {"wall_s": 3.173} and run["extra"]["events"][0]["type"] == "trial_run"
    # per-step metrics add up to the trial's usage; cost from prices.yaml
    p = price("claude-sonnet-4-6")
    cost = pytest.approx((1200 * p["input"] + 80 * p["output"]) / 1e6)
    assert [s["metrics"] for s in agent] == [{"prompt_tokens": 1200, "completion_tokens": 80, "cost_usd": cost}] * 6
    assert sum(s["metrics"]["cost_usd"] for s in agent) == pytest.approx(data["final_metrics"]["total_cost_usd"])
    assert data["extra"]["files_written"] == ["/root/notes.txt"]
    assert [t["function"]["name"] for t in data["agent"]["tool_definitions"]] == ["bash", "write_file",
                                                                                "run_workload", "finish"]
    stamps = [s["timestamp"] for s in steps]
    assert all(stamps) and stamps == sorted(stamps)  # from the job's events.jsonl


def test_cli_claude_code_trial(tmp_path):
    data = exported(CLI, tmp_path)
    check_outcome(data, CLI)
    recs = records(CLI)
    events = [r["event"] for r in recs if r["type"] == "cli_event"]
    init = next(e for e in events if e["type"] == "system")
    msg_ids = list(dict.fromkeys(e["message"]["id"] for e in events if e["type"] == "assistant"))
    assert len(msg_ids) < sum(e["type"] == "assistant" for e in events)  # a reply came in several events
    steps = data["steps"]
    assert [s["source"] for s in steps] == ["user"] + ["agent"] * len(msg_ids)  # one step per reply
    assert [s["extra"]["message_id"] for s in steps[1:]] == msg_ids
    assert data["agent"]["version"] == init["claude_code_version"]
    assert data["agent"]["extra"]["cli_session"]["session_id"] == init["session_id"]
    assert [c["function_name"] for c in calls(data)] == [
        "Bash", "mcp__schedcp__sysctl_get", "mcp__schedcp__sysctl_set", "mcp__schedcp__run_workload",
        "mcp__schedcp__finish"]
    assert steps[2]["message"] == "Autogroup first." and steps[2]["tool_calls"][0]["arguments"] == {
        "name": "kernel.sched_autogroup_enabled"}
    assert steps[-1]["message"] == "done" and "tool_calls" not in steps[-1]
    by_id = results(data)
    refused = by_id[calls(data)[0]["tool_call_id"]]  # its built-in Bash is refused by the CLI itself
    assert refused["extra"]["is_error"] and "No such tool available" in refused["content"]
    # each MCP call: what the model saw, joined to the harness's record of it
    harness = [r for r in recs if r["type"] == "tool_result"]
    mcp = [by_id[c["tool_call_id"]] for c in calls(data)[1:]]
    assert [r["extra"]["tool"] for r in mcp] == [r["name"] for r in harness]
    assert [r["extra"]["harness_output"] for r in mcp] == [r["output"] for r in harness]
    assert all(r["content"] for r in mcp)
    assert mcp[1]["extra"]["events"][0]["cmd"] == "sysctl -w kernel.sched_autogroup_enabled=0"
    # per-step prompt tokens (input + cache) add up to the session; completion tokens only in the totals
    assert sum(s["metrics"]["prompt_tokens"] for s in steps[1:]) == data["final_metrics"]["total_prompt_tokens"]
    assert data["final_metrics"]["total_completion_tokens"] > 0
    result = next(e for e in events if e["type"] == "result")
    assert data["extra"]["cli"]["result"]["num_turns"] == result["num_turns"]


def test_scx_search_job(tmp_path):
    tdir = SCX_JOB / "hackbench__scx-search__a0"
    data = exported(tdir, tmp_path)
    check_outcome(data, tdir)
    recs = records(tdir)
    agent_phase = recs[[r.get("phase") for r in recs].index("agent"):[r.get("phase") for r in recs].index("measure")]
    notes = [r["text"] for r in agent_phase if r["type"] == "message"]
    steps = data["steps"]
    assert [s["source"] for s in steps] == ["user"] + ["agent"] * len(notes)
    assert [s["message"] for s in steps[1:]] == notes  # candidate ..., keeping ...
    assert notes[0].startswith("candidate default") and notes[-1].startswith("keeping sched:scx_qmap")
    # deterministic steps: no model call, no token metrics
    assert all(s["llm_call_count"] == 0 and "metrics" not in s for s in steps[1:])
    # its guest commands and trial runs are the steps' tool calls, each with its output
    names = [c["function_name"] for c in calls(data)]
    assert names.count("bash") == sum(r["type"] == "command" for r in agent_phase) == 16
    assert names.count("run_workload") == sum(r["type"] == "trial_run" for r in agent_phase) == 14
    assert [c["function_name"] for c in steps[1]["tool_calls"]] == ["run_workload", "run_workload"]
    by_id = results(data)
    assert [json.loads(by_id[c["tool_call_id"]]["content"])["metrics"] for c in steps[1]["tool_calls"]] == [
        {"wall_s": 4.902}, {"wall_s": 4.903}]
    assert data["final_metrics"]["total_prompt_tokens"] == 0 and data["extra"]["ratio"] > 1.1
    assert {t["function"]["name"] for t in data["agent"]["tool_definitions"]} == {"bash", "run_workload"}


def test_trial_that_failed_before_its_agent(tmp_path):
    tdir = SCX_JOB / "gzip__scx-search__a0"
    data = exported(tdir, tmp_path)
    check_outcome(data, tdir)
    assert [s["source"] for s in data["steps"]] == ["system"]
    assert "infra_error" in data["steps"][0]["message"] and data["extra"]["failure_kind"] == "infra_error"


def test_linux_default_control(tmp_path):
    data = exported(LINUX_DEFAULT, tmp_path)
    check_outcome(data, LINUX_DEFAULT)
    steps = data["steps"]
    assert [s["source"] for s in steps] == ["user", "agent"]
    assert steps[1]["message"] == "linux-default: leaving the kernel's defaults in place"
    assert steps[1]["llm_call_count"] == 0 and "tool_calls" not in steps[1]
    assert data["extra"]["verdict"] and 0.8 < data["extra"]["ratio"] < 1.2


def test_export_command(tmp_path, monkeypatch, capsys):
    jobs = tmp_path / "jobs"
    shutil.copytree(SCX_JOB, jobs / SCX_JOB.name)
    monkeypatch.setenv("SCHEDCP_JOBS", str(jobs))
    assert main(["export", SCX_JOB.name, "--format", "atif"]) == 0
    lines = capsys.readouterr().out.splitlines()
    job = jobs / SCX_JOB.name
    assert lines == [str(job / t / ATIF_FILE) for t in ("gzip__scx-search__a0", "hackbench__scx-search__a0",
                                                        "sqlite__scx-search__a0")]
    v = TrajectoryValidator()
    assert all(v.validate(Path(p)) for p in lines), v.get_errors()
    out = tmp_path / "out"
    assert main(["export", SCX_JOB.name, "--trial", "sqlite__scx-search__a0", "--format", "atif",
                 "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines() == [str(out / "sqlite__scx-search__a0.atif.json")]
    assert json.loads((out / "sqlite__scx-search__a0.atif.json").read_text()) == trial_trajectory(
        job / "sqlite__scx-search__a0")
    assert main(["export", SCX_JOB.name, "--trial", "nope", "--format", "atif"]) == 2
    assert main(["export", "no-such-job", "--format", "atif"]) == 2


@pytest.mark.parametrize("atif", [True, False])
def test_run_atif_writes_it_when_the_trial_ends(tmp_path, atif):
    cfg = TrialConfig(trial_id="sqlite__linux-default__a0", workload="sqlite", agent="linux-default", atif=atif)
    res = run_trial(cfg, tmp_path / "t", _Backend())
    path = tmp_path / "t" / ATIF_FILE
    assert path.is_file() == atif
    if atif:
        v = TrajectoryValidator()
        assert v.validate(path), v.get_errors()
        data = json.loads(path.read_text())
        assert data["extra"]["failure_kind"] == "harness_error" == res.failure_kind
        assert data["steps"][-1]["source"] == "system" and "KeyError" in data["steps"][-1]["message"]


def test_run_atif_flag_reaches_every_trial():
    from harness.cli import build_parser
    from harness.job import trial_config
    from harness.models import JobConfig

    assert build_parser().parse_args(["run", "--workloads", "sqlite", "--atif"]).atif is True
    assert build_parser().parse_args(["run", "--workloads", "sqlite"]).atif is False
    cfg = JobConfig(job_id="j", workloads=["sqlite"], agent="scx-search", atif=True)
    assert trial_config(cfg, "sqlite__scx-search__a0", "sqlite", 0).atif is True


def test_bandit_tuner(tmp_path, monkeypatch):
    """A classic tuner's own records (candidate, bandit, tuner_summary), from the real
    tuner on test_gym's stub guest, its trial runs logged as the trial logs them."""
    from harness.agents import make_agent
    from harness.agents.base import AgentContext, Trajectory
    from harness.limits import BudgetTracker
    from harness.models import Budget, TrialResult
    from harness.workload import load_workload
    from tests.unit.test_gym import StubGuest

    guest = StubGuest(monkeypatch, lambda cfg: 3.0 if cfg.scheduler == "scx_simple" else 5.0)
    tdir = tmp_path / "job" / "hackbench__bandit__a0"
    tdir.mkdir(parents=True)
    traj = Trajectory(tdir / "trajectory.jsonl")

    def trial_run():  # as Trial._trial_run logs it
        m = guest.trial_run()
        traj.log("trial_run", metrics=m, duration_s=0.5)
        return m

    traj.log("phase", phase="agent")
    traj.log("instruction", text="tune hackbench")
    ctx = AgentContext(sandbox=None, workload=load_workload("hackbench"), instruction="tune hackbench",
                       files_dir=tdir / "files", budget=BudgetTracker(Budget(steps=6)), trajectory=traj,
                       trial_run=trial_run)
    make_agent("bandit").run(ctx)
    traj.log("phase", phase="measure")
    res = TrialResult(trial_id=tdir.name, workload="hackbench", agent="bandit", usage=ctx.budget.usage,
                      improvement={"ratio": 1.6, "ci95": [1.5, 1.7]}, verdict="improved")
    (tdir / "result.json").write_text(res.model_dump_json())
    data = exported(tdir, tmp_path / "out")
    check_outcome(data, tdir)
    recs = records(tdir)
    cands = [r for r in recs if r["type"] == "candidate"]
    steps = data["steps"]
    cand_steps = [s for s in steps if "candidate" in s.get("extra", {})]
    assert len(cands) == len(cand_steps) == 6
    assert [s["extra"]["candidate"]["label"] for s in cand_steps] == [c["label"] for c in cands]
    assert all(s["message"].startswith(f"candidate {c['label']}") for s, c in zip(cand_steps, cands))
    # each candidate's run is its tool call; the bandit's state rides along
    assert all([c["function_name"] for c in s["tool_calls"]] == ["run_workload"] for s in cand_steps)
    assert all("bandit" in s["extra"] for s in cand_steps if s["extra"]["candidate"]["score"] is not None)
    assert any(s["source"] == "system" and "limit" in s["message"] for s in steps)  # the spent step budget
    assert steps[-1]["message"].startswith("bandit: keeping sched:scx_simple")
    assert data["extra"]["tuner_summary"]["best_label"] == "sched:scx_simple"
    assert all(s["llm_call_count"] == 0 for s in steps if s["source"] == "agent")


def test_external_mcp_client(tmp_path):
    """An external MCP client: the harness sees its tool calls, not its model; each call
    (as the MCP server makes it: TrialTools.call without an id) is one step."""
    from harness.agents.base import AgentContext, Trajectory
    from harness.limits import BudgetTracker
    from harness.models import Budget, TrialResult
    from harness.tools import TrialTools
    from harness.workload import load_workload
    from tests.unit.test_chat_agents import StubSandbox

    tdir = tmp_path / "job" / "hackbench__external__a0"
    tdir.mkdir(parents=True)
    traj = Trajectory(tdir / "trajectory.jsonl")
    traj.log("phase", phase="agent")
    ctx = AgentContext(sandbox=StubSandbox(), workload=load_workload("hackbench"), instruction="",
                       files_dir=tdir / "files", budget=BudgetTracker(Budget()), trajectory=traj,
                       trial_run=lambda: {"wall_s": 2.0})
    tools = TrialTools(ctx, count_steps=True)
    outs = [tools.call("sysctl_get", {"name": "kernel.sched_autogroup_enabled"}), tools.call("run_workload", {}),
            tools.call("finish", {"summary": "ok"})]
    res = TrialResult(trial_id=tdir.name, workload="hackbench", agent="external", usage=ctx.budget.usage,
                      tool_calls=tools.calls)
    (tdir / "result.json").write_text(res.model_dump_json())
    data = exported(tdir, tmp_path / "out")
    check_outcome(data, tdir)
    steps = data["steps"]
    assert [s["source"] for s in steps] == ["agent"] * 3 and not any("metrics" in s for s in steps)
    assert [c["function_name"] for c in calls(data)] == ["sysctl_get", "run_workload", "finish"]
    assert len({c["tool_call_id"] for c in calls(data)}) == 3
    assert [r["content"] for r in results(data).values()] == outs


def test_openai_nudge_and_malformed_call(tmp_path, monkeypatch):
    """The openai agent on a scripted server (the real SDK and loop): a reply without a tool
    call is nudged (a user step), a call with broken JSON is answered by its error, and a
    model without a price has no cost."""
    from harness.agents import make_agent
    from harness.agents.base import AgentContext, Trajectory
    from harness.limits import BudgetTracker
    from harness.models import Budget, TrialResult
    from harness.workload import load_workload
    from tests.fake_openai import FakeOpenAI, tool_calls
    from tests.unit.test_chat_agents import StubSandbox

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    tdir = tmp_path / "job" / "sqlite__openai__a0"
    tdir.mkdir(parents=True)
    traj = Trajectory(tdir / "trajectory.jsonl")
    traj.log("phase", phase="agent")
    traj.log("instruction", text="tune sqlite")
    ctx = AgentContext(sandbox=StubSandbox(), workload=load_workload("sqlite"), instruction="tune sqlite",
                       files_dir=tdir / "files", budget=BudgetTracker(Budget(), "local-model"), trajectory=traj,
                       model="local-model", trial_run=lambda: {"wall_s": 2.0})
    srv = FakeOpenAI([tool_calls(text="I would tune the scheduler."), tool_calls(("bash", '{"command": "uname -r"')),
                      tool_calls(("run_workload", "")), tool_calls(("finish", {"summary": "ok"}))])
    try:
        make_agent("openai", base_url=srv.url, nudges=1).run(ctx)
    finally:
        srv.close()
    res = TrialResult(trial_id=tdir.name, workload="sqlite", agent="openai", model="local-model",
                      usage=ctx.budget.usage, malformed_tool_calls=ctx.notes["malformed_tool_calls"])
    (tdir / "result.json").write_text(res.model_dump_json())
    data = exported(tdir, tmp_path / "out")
    check_outcome(data, tdir)
    steps = data["steps"]
    assert [s["source"] for s in steps] == ["user", "system", "agent", "user", "agent", "agent", "agent"]
    assert "cannot be enforced" in steps[1]["message"]  # the harness's note: no price for this model
    steps = steps[1:]
    assert steps[1]["message"] == "I would tune the scheduler." and "tool_calls" not in steps[1]
    assert steps[2]["message"].startswith("You called no tool") and steps[2]["extra"]["from"] == "harness"
    broken = steps[3]["tool_calls"][0]
    assert broken["function_name"] == "bash"
    assert broken["arguments"] == {"_unparsed_arguments": '{"command": "uname -r"'}
    answer = results(data)[broken["tool_call_id"]]
    assert answer["content"].startswith("error: malformed tool call (arguments are not valid JSON")
    assert json.loads(results(data)[steps[4]["tool_calls"][0]["tool_call_id"]]["content"]) == {"metrics": {"wall_s": 2.0}}
    assert all(s["metrics"] == {"prompt_tokens": 900, "completion_tokens": 60} for s in steps if s["source"] == "agent")
    assert "total_cost_usd" not in data["final_metrics"]  # unknown, not zero
    assert data["final_metrics"]["extra"]["malformed_tool_calls"] == 1
