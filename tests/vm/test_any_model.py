"""Any model, any agent product, in real VMs: the `openai` agent on a scripted
OpenAI-compatible server (malformed calls, a 429, the key kept out of the guest and of
every job file), Claude Code (`cli:claude-code`) on the scripted Anthropic server acting
only through the trial's MCP server, and a real local model (Gemma 3 270M on
llama-cpp-python's server) driving a smoke trial end to end."""

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import local_model
from harness.agents.cli_agent import find_bin
from harness.job import create_job, run_job
from harness.models import Budget, JobConfig
from tests.fake_anthropic import FakeAnthropic, tool_use
from tests.fake_openai import FakeOpenAI, tool_calls
from tests.vm.test_harness import atif_calls, events, valid_atif

REPO = Path(__file__).resolve().parents[2]


def no_secret_in(d: Path, secret: str) -> None:
    for p in d.rglob("*"):
        if p.is_file():
            assert secret not in p.read_text(errors="replace"), p


def test_openai_trial_malformed_calls_and_key_kept_out(backend, tmp_path, monkeypatch):
    monkeypatch.setenv("SCHEDCP_JOBS", str(tmp_path / "jobs"))
    key = "sk-proj-test-" + secrets.token_hex(12)
    monkeypatch.setenv("OPENAI_API_KEY", key)
    srv = FakeOpenAI([
        429,  # rate limited once: retried
        tool_calls(("bash", {"command": "cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' "
                                        f"| grep -c -e OPENAI -e {key[:12]} || true"})),
        tool_calls(("bash", '{"command": "sysctl -w kernel.sched_autogroup_enabled=0"')),  # truncated JSON
        tool_calls(("start_scheduler", {"name": "scx_simple"})),  # not offered on the bash interface
        tool_calls(("bash", {"command": "sysctl -w kernel.sched_autogroup_enabled=0"})),
        tool_calls(("finish", {"summary": "autogroup off"})),
    ])
    try:
        cfg = JobConfig(job_id="openai-vm", workloads=["sqlite"], agent="openai", model="scripted-model",
                        base_url=srv.url, repeat=1, budget=Budget(steps=10, wall_s=600))
        d = create_job(cfg, backend)
        (res,) = run_job(d, cfg, backend, lambda k, e: None, agent_kwargs={"backoff_s": 0.1})
    finally:
        srv.close()
    assert res.status == "done" and res.failure_kind == "none", res.failure
    assert res.backend == "openai" and res.model == "scripted-model"
    assert res.malformed_tool_calls == 2 and res.tool_calls == 3
    assert res.usage.steps == 5 and res.usage.input_tokens == 5 * 900 and res.usage.cost_usd is None
    assert res.tuned_config["sysctl_changed"] == {"kernel.sched_autogroup_enabled": "0"}
    assert res.tuned_config["sched_ext"]["state"] == "disabled"  # the unoffered tool did not run
    ev = events(d / "sqlite__openai__a0" / "trajectory.jsonl")
    assert [e["status"] for e in ev if e["type"] == "api_error"] == [429]
    assert [e["name"] for e in ev if e["type"] == "malformed_tool_call"] == ["bash", "start_scheduler"]
    first = next(e for e in ev if e["type"] == "tool_result")
    assert json.loads(first["output"])["stdout"].strip().splitlines()[-1] == "0"  # not in the guest
    hdrs = {k.lower(): v for k, v in srv.requests[-1]["headers"].items()}
    assert hdrs["authorization"] == f"Bearer {key}"  # it reached the API server
    no_secret_in(d, key)  # ... but no file of the job (job.json, events, trajectory, result, consoles)
    assert json.loads((d / "job.json").read_text())["config"]["base_url"] == srv.url
    r = subprocess.run([sys.executable, "-m", "harness.cli", "report", "openai-vm"], cwd=REPO,
                       env=dict(os.environ), capture_output=True, text=True, timeout=60)
    row = next(x for x in r.stdout.splitlines() if x.startswith("| sqlite"))
    assert "| openai | scripted-model |" in row and "| unknown | 2 |" in row, r.stdout


def test_claude_code_trial_through_mcp(backend, tmp_path, monkeypatch):
    assert find_bin("claude"), "Claude Code is not installed: make test-tools"
    monkeypatch.setenv("SCHEDCP_JOBS", str(tmp_path / "jobs"))
    key = "sk-ant-test-" + secrets.token_hex(12)
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    marker = tmp_path / "PWNED"
    main = lambda b: any(t.get("name", "").startswith("mcp__schedcp__") for t in b.get("tools", []))  # noqa: E731
    srv = FakeAnthropic([
        tool_use(("Bash", {"command": f"touch {marker}", "description": "x"})),
        tool_use(("mcp__schedcp__start_scheduler", {"name": "scx_simple"})),
        tool_use(("mcp__schedcp__sysctl_set", {"name": "kernel.sched_autogroup_enabled", "value": "0"})),
        tool_use(("mcp__schedcp__finish", {"summary": "scx_simple"})),
        {"id": "msg_end", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6",
         "content": [{"type": "text", "text": "done"}], "stop_reason": "end_turn", "stop_sequence": None,
         "usage": {"input_tokens": 1000, "output_tokens": 5}},
    ], side=lambda b: not main(b))
    try:
        cfg = JobConfig(job_id="cli-vm", workloads=["hackbench"], agent="cli:claude-code",
                        model="claude-sonnet-4-6", interface="mcp", base_url=srv.url, repeat=1,
                        budget=Budget(steps=10, wall_s=900), atif=True)
        d = create_job(cfg, backend)
        (res,) = run_job(d, cfg, backend, lambda k, e: None)
    finally:
        srv.close()
    assert res.status == "done" and res.failure_kind == "none", res.failure
    assert res.backend == "cli" and res.agent == "cli:claude-code"
    assert res.tuned_config["sched_ext"] == {"state": "enabled", "ops": "simple"}
    assert res.tuned_config["sysctl_changed"] == {"kernel.sched_autogroup_enabled": "0"}
    assert res.tool_calls == 3 and res.usage.steps >= 5 and res.usage.output_tokens > 0
    assert not marker.exists()
    ev = events(d / "hackbench__cli-claude-code__a0" / "trajectory.jsonl")
    assert next(e for e in ev if e["type"] == "host_files")["created"] == []
    assert sum(1 for e in ev if e["type"] == "cli_event") >= 6
    # --atif: the real CLI's trial as an ATIF trajectory that Harbor's validator accepts
    atif = valid_atif(d / "hackbench__cli-claude-code__a0")
    assert atif["agent"]["name"] == "cli:claude-code"
    assert [c for c in atif_calls(atif) if c.startswith("mcp__schedcp__")] == [
        "mcp__schedcp__start_scheduler", "mcp__schedcp__sysctl_set", "mcp__schedcp__finish"]
    no_secret_in(d, key)


@pytest.mark.skipif(bool(local_model.available()), reason=f"local model extra: {local_model.available()}")
def test_local_model_smoke_trial(backend, tmp_path, monkeypatch):
    """Gemma 3 270M drives a smoke trial through the openai agent. A model this small
    calls tools badly or not at all: whatever it does, every step is recorded, the
    baseline and final measurements are kept, and the trial ends with a result."""
    monkeypatch.setenv("SCHEDCP_JOBS", str(tmp_path / "jobs"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    t0 = time.monotonic()
    with local_model.LocalModelServer(log=tmp_path / "server.log") as srv:
        cfg = JobConfig(job_id="local-vm", workloads=["sqlite"], agent="openai", model=srv.alias,
                        base_url=srv.url, repeat=1, budget=Budget(steps=4, wall_s=900))
        d = create_job(cfg, backend)
        (res,) = run_job(d, cfg, backend, lambda k, e: None, agent_kwargs={"max_tokens": 256, "timeout_s": 300,
                                                                          "max_retries": 1, "nudges": 2})
    took = time.monotonic() - t0
    ev = events(d / "sqlite__openai__a0" / "trajectory.jsonl")
    print(f"\nlocal model trial: {took:.0f}s total, agent {res.phases_s.get('agent')}s, steps {res.usage.steps}, "
          f"tokens {res.usage.input_tokens}+{res.usage.output_tokens}, tool calls {res.tool_calls}, "
          f"malformed {res.malformed_tool_calls}, failure {res.failure_kind}: {res.failure}, "
          f"ratio {res.improvement.get('ratio')}")
    assert (d / "sqlite__openai__a0" / "result.json").is_file()
    assert res.failure_kind in ("none", "budget_exceeded"), res.failure
    assert res.backend == "openai" and res.model == "gemma-3-270m" and res.usage.cost_usd is None
    assert 1 <= res.usage.steps <= 4 and res.usage.input_tokens > 0
    assert sum(1 for e in ev if e["type"] == "message" and e.get("role") == "assistant") == res.usage.steps
    assert res.malformed_tool_calls == sum(1 for e in ev if e["type"] == "malformed_tool_call") + \
        sum(1 for e in ev if e["type"] == "tool_result" and e["output"].startswith(("bad tool input", "unknown tool")))
    assert len(res.baseline_runs) == 1 and len(res.tuned_runs) == 1 and res.improvement["ratio"] > 0
