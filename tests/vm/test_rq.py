"""RQ2 (goal inference), RQ3 (the MCP interface) and safe testing of agent-written
schedulers, end to end in real VMs. The model is a local server speaking the Messages
API (the real anthropic SDK pointed at it); MCP sessions use the real `mcp` SDK over
real transports (streamable HTTP, and stdio to the real `schedcp mcp serve`)."""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from harness.job import create_job, job_results, run_job
from harness.models import Budget, JobConfig
from tests.fake_anthropic import tool_use
from tests.vm.test_harness import api, events  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parents[2]
SCHED = REPO / "tests/fixtures/schedulers"


def test_goal_declarations_are_scored(backend, api, tmp_path, monkeypatch):  # noqa: F811
    """Two --no-slo-hint trials: one declares the right goal first; the other tries to
    tune before declaring (refused), then declares a wrong goal."""
    monkeypatch.setenv("SCHEDCP_JOBS", str(tmp_path / "jobs"))
    script = [
        # attempt 0: looks at the spec the guest got (no goal in it), then declares correctly
        tool_use(("bash", {"command": "grep -cE '^(goal|slo|primary):' /opt/schedcp/workloads/hackbench/workload.yaml"
                                      " || true"})),
        tool_use(("declare_goal", {"metric": "completion time", "direction": "lower",
                                   "rationale": "hackbench reports the time to pass all messages"})),
        tool_use(("finish", {"summary": "nothing to change"})),
        # attempt 1: tunes first (refused), then a wrong goal
        tool_use(("write_file", {"path": "/root/x.conf", "content": "x"})),
        tool_use(("declare_goal", {"metric": "throughput", "direction": "higher", "rationale": "guess"})),
        tool_use(("finish", {})),
    ]
    api(script)
    cfg = JobConfig(job_id="rq2-test", workloads=["hackbench"], agent="claude", model="claude-sonnet-4-6",
                    attempts=2, repeat=1, slo_hint=False, budget=Budget(steps=6, wall_s=600))
    d = create_job(cfg, backend)
    res = {r.attempt: r for r in run_job(d, cfg, backend, lambda k, e: None, agent_kwargs={"backoff_s": 0.1})}
    good, bad = res[0], res[1]
    for r in (good, bad):
        assert r.goal is not None, (r.attempt, r.failure_kind, r.failure)
    assert good.goal["correct"] is True and good.goal["step"] == 2, good.goal
    assert good.goal["declared"]["metric"] == "completion time"
    assert bad.goal["correct"] is False and bad.goal["metric_ok"] is False and bad.goal["direction_ok"] is False
    assert bad.goal["truth"] == {"metric": "wall_s", "direction": "lower"}
    ev0 = events(d / "hackbench__claude__a0" / "trajectory.jsonl")
    first_out = next(e for e in ev0 if e["type"] == "tool_result")["output"]
    assert json.loads(first_out)["stdout"].strip() == "0"  # the guest's spec has no goal, SLO or primary metric
    ev1 = events(d / "hackbench__claude__a1" / "trajectory.jsonl")
    refused = next(e for e in ev1 if e["type"] == "tool_result" and e["name"] == "write_file")
    assert refused["output"].startswith("refused: call declare_goal")
    assert "/root/x.conf" not in bad.files_written
    # the RQ2 table, rebuilt from the job folder by the CLI
    r = subprocess.run([sys.executable, "-m", "harness.cli", "experiment", "rq2", "--from", "rq2-test"],
                       cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    row = next(x for x in r.stdout.splitlines() if x.startswith("| claude"))
    assert "| 1/2 | 50% | 2 | hackbench |" in row, r.stdout
    r = subprocess.run([sys.executable, "-m", "harness.cli", "experiment", "rq1", "--from", "rq2-test",
                        "--format", "json"], cwd=REPO, env=dict(os.environ), capture_output=True, text=True)
    data = json.loads(r.stdout)
    assert data["claude (claude-sonnet-4-6)"]["workloads"][0]["attempts"] == 2


def test_claude_over_mcp_interface(backend, api, tmp_path, monkeypatch):  # noqa: F811
    """`--interface mcp`: the model sees exactly the MCP session's tools and acts through them."""
    monkeypatch.setenv("SCHEDCP_JOBS", str(tmp_path / "jobs"))
    srv, _ = api([
        tool_use(("list_schedulers", {})),
        tool_use(("start_scheduler", {"name": "scx_simple"})),
        tool_use(("sysctl_set", {"name": "kernel.sched_autogroup_enabled", "value": "0"})),
        tool_use(("system_monitor", {"seconds": 1})),
        tool_use(("finish", {"summary": "scx_simple"})),
    ])
    cfg = JobConfig(job_id="rq3-mcp", workloads=["hackbench"], agent="claude", model="claude-sonnet-4-6",
                    interface="mcp", repeat=1, budget=Budget(steps=8, wall_s=600))
    d = create_job(cfg, backend)
    (res,) = run_job(d, cfg, backend, lambda k, e: None, agent_kwargs={"backoff_s": 0.1})
    assert res.status == "done", res.failure
    assert res.interface == "mcp" and res.tool_calls == 5
    assert res.tuned_config["sched_ext"] == {"state": "enabled", "ops": "simple"}
    assert res.tuned_config["sysctl_changed"] == {"kernel.sched_autogroup_enabled": "0"}
    sent = {t["name"] for t in srv.requests[0]["body"]["tools"]}
    assert sent == {"list_schedulers", "start_scheduler", "stop_scheduler", "scheduler_status",
                    "create_and_verify_scheduler", "sysctl_get", "sysctl_set", "system_monitor", "run_workload",
                    "declare_goal", "finish"}
    ev = events(d / "hackbench__claude__a0" / "trajectory.jsonl")
    iface = next(e for e in ev if e["type"] == "interface")
    assert iface["kind"] == "mcp" and iface["url"].startswith("http://127.0.0.1:")
    mon = json.loads(next(e for e in ev if e["type"] == "tool_result" and e["name"] == "system_monitor")["output"])
    assert mon["ctx_switches_per_s"] > 0 and mon["sched_ext"]["ops"] == "simple"
    assert "wakeup_lat_error" not in mon and mon["wakeup_lat_samples"] > 0, mon


def test_mcp_stdio_session_creates_and_verifies_schedulers(tmp_path):
    """An outside MCP client starts `schedcp mcp serve --transport stdio`, builds a good and a
    broken scheduler through it, and gets the trial's measured result from `finish`."""
    env = dict(os.environ, SCHEDCP_JOBS=str(tmp_path / "jobs"), PYTHONPATH=str(REPO))
    env.pop("ANTHROPIC_API_KEY", None)
    params = StdioServerParameters(command=sys.executable, cwd=str(REPO), env=env,
                                   args=["-m", "harness.cli", "mcp", "serve", "--workload", "hackbench",
                                         "--transport", "stdio", "--repeat", "1", "--job-id", "mcp-stdio",
                                         "--max-wall-s", "900"])
    fifo, broken = (SCHED / "fifo.bpf.c").read_text(), (SCHED / "broken.bpf.c").read_text()

    async def session():
        out = {}
        async with Client(params, read_timeout_seconds=900) as c:
            out["tools"] = {t.name for t in (await c.list_tools()).tools}

            async def call(name, args):  # the result's structured content (its outputSchema's object)
                r = await c.call_tool(name, args)
                assert not r.is_error and isinstance(r.structured_content, dict), (name, r.content)
                return r.structured_content

            out["bad"] = await call("create_and_verify_scheduler", {"name": "broken", "source": broken})
            out["good"] = await call("create_and_verify_scheduler", {"name": "fifo", "source": fifo})
            out["status"] = await call("scheduler_status", {})
            out["finish"] = await call("finish", {"summary": "fifo"})
        return out

    out = asyncio.run(asyncio.wait_for(session(), 1500))
    assert {"create_and_verify_scheduler", "system_monitor", "declare_goal", "finish"} <= out["tools"]
    assert out["bad"]["outcome"] == "compile_error" and out["bad"]["stage"] == "compile"
    assert "use of undeclared identifier 'no_such_variable'" in out["bad"]["error"]  # clang's words
    assert out["good"]["outcome"] == "ok" and out["good"]["loaded"] and out["good"]["ops"] == "fifo"
    assert out["status"]["state"] == "enabled" and out["status"]["ops"] == "fifo"
    # finish answered with the measured result of the trial
    assert out["finish"]["finished"] is True
    report = out["finish"]["report"]
    assert report["workloads"][0]["workload"] == "hackbench" and report["workloads"][0]["best"] > 0
    (res,) = job_results(tmp_path / "jobs" / "mcp-stdio")
    assert res.agent == "external" and res.interface == "mcp" and res.status == "done", res.failure
    assert res.tuned_config["sched_ext"] == {"state": "enabled", "ops": "fifo"}
    # The known-good fifo stays attached while it is measured, unless the whole host stalled
    # for over 30 s (seen once on a CI host: every guest's clock jumps, and sched_ext's
    # watchdog, not having run for that long, ejects any BPF scheduler); the result then
    # carries the kernel's reason.
    assert res.scheduler_in_place or "watchdog failed to check in" in res.scheduler_exit, res.scheduler_exit
    assert res.tool_calls == 4
    traj = events(tmp_path / "jobs" / "mcp-stdio" / "hackbench__external__a0" / "trajectory.jsonl")
    assert [e["name"] for e in traj if e["type"] == "tool_call"] == [
        "create_and_verify_scheduler", "create_and_verify_scheduler", "scheduler_status", "finish"]


@pytest.mark.fault
@pytest.mark.parametrize("fixture,outcome,words", [
    ("stall", "ejected", "runnable task stall"),
    ("unverifiable", "verifier_rejected", "invalid mem access"),
])
def test_schedcp_try_reports_what_went_wrong(tmp_path, fixture, outcome, words):
    r = subprocess.run([sys.executable, "-m", "harness.cli", "try", str(SCHED / f"{fixture}.bpf.c"), "--json"],
                       cwd=REPO, capture_output=True, text=True, timeout=900)
    assert r.returncode == 1, r.stderr  # the scheduler failed; the command itself worked
    out = json.loads(r.stdout)
    assert out["outcome"] == outcome, out
    v = out["verdict"]
    assert words in (v["kernel_reason"] + v["error"] + v["dmesg"])
    assert v["state"] == "disabled" and not v["loaded"]
