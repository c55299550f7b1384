"""The model-API agents' shared loop (harness/agents/loop.py), driven by scripted local
servers through the real SDKs, on a stub sandbox (no VM): malformed tool calls are
answered, logged and counted; 429s are retried; tokens come from the usage fields; a
model without a price has an unknown cost."""

import json
import secrets

import pytest

from harness.agents import make_agent
from harness.agents.base import AgentContext, AgentInfraError, Trajectory
from harness.limits import BudgetTracker
from harness.models import Budget, TrialResult
from harness.workload import load_workload
from sandbox.base import ExecResult
from tests.fake_anthropic import FakeAnthropic, tool_use
from tests.fake_openai import FakeOpenAI, tool_calls


class StubSandbox:
    """Answers every command with exit 0 and echoes it; records what ran."""

    def __init__(self):
        self.cmds: list[str] = []

    def run(self, cmd, timeout=60.0, max_output=1 << 20):
        self.cmds.append(cmd)
        return ExecResult(0, f"ran: {cmd}\n", "", 0.01)

    def put_file(self, path, content):
        self.cmds.append(f"put {path}")


def context(tmp_path, model, **budget):
    sb = StubSandbox()
    ctx = AgentContext(sandbox=sb, workload=load_workload("hackbench"), instruction="tune it",
                       budget=BudgetTracker(Budget(**budget), model), trajectory=Trajectory(tmp_path / "t.jsonl"),
                       files_dir=tmp_path / "files", model=model, trial_run=lambda: {"wall_s": 1.0})
    return ctx, sb


def events(tmp_path):
    return [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]


def test_openai_malformed_calls_and_429_retry(tmp_path, monkeypatch):
    key = "sk-test-" + secrets.token_hex(8)
    monkeypatch.setenv("OPENAI_API_KEY", key)
    srv = FakeOpenAI([
        429,  # rate limited once: retried
        tool_calls(("bash", '{"command": "uname -r"')),  # truncated JSON
        tool_calls(("reboot_vm", {}), ("bash", "[1, 2]")),  # unknown tool; arguments not an object
        tool_calls(("bash", {"command": "sysctl -w kernel.sched_autogroup_enabled=0"})),
        tool_calls(("run_workload", "")),  # empty arguments: an empty object
        tool_calls(("finish", {"summary": "done"})),
    ])
    try:
        ctx, sb = context(tmp_path, "tiny-local-model")
        make_agent("openai", base_url=srv.url, backoff_s=0.01).run(ctx)
    finally:
        srv.close()
    assert ctx.notes["malformed_tool_calls"] == 3
    assert ctx.notes["tools"].malformed == 0 and ctx.notes["tools"].calls == 3
    assert sb.cmds == ["sysctl -w kernel.sched_autogroup_enabled=0"]  # only the well-formed bash call ran
    ev = events(tmp_path)
    assert [e["status"] for e in ev if e["type"] == "api_error"] == [429]
    bad = [e for e in ev if e["type"] == "malformed_tool_call"]
    assert [e["name"] for e in bad] == ["bash", "reboot_vm", "bash"]
    assert "not valid JSON" in bad[0]["reason"] and bad[0]["input"] == '{"command": "uname -r"'
    assert bad[1]["reason"] == "unknown tool 'reboot_vm'" and "not a JSON object" in bad[2]["reason"]
    assert [e["name"] for e in ev if e["type"] == "tool_call"] == ["bash", "run_workload", "finish"]
    # 5 answered calls (the 429 is not a step); tokens from the usage fields
    u = ctx.budget.usage
    assert (u.steps, u.input_tokens, u.output_tokens) == (5, 5 * 900, 5 * 60)
    assert u.cost_usd is None  # no price for this model: unknown, not zero
    note = next(e for e in ev if e["type"] == "note")
    assert "cost budget" in note["text"] and "cannot be enforced" in note["text"]
    # the model was told why, in the tool message answering each malformed call
    sent = srv.requests[2]["body"]["messages"]
    answers = [m for m in sent if m["role"] == "tool"]
    assert answers and answers[0]["content"].startswith("error: malformed tool call")
    assert {t["function"]["name"] for t in srv.requests[1]["body"]["tools"]} == {"bash", "write_file",
                                                                                "run_workload", "finish"}
    assert srv.requests[1]["body"]["model"] == "tiny-local-model" and srv.requests[1]["body"]["tool_choice"] == "auto"
    assert {k.lower(): v for k, v in srv.requests[1]["headers"].items()}["authorization"] == f"Bearer {key}"
    assert key not in (tmp_path / "t.jsonl").read_text()
    # assistant messages are in the claude agent's format
    msg = next(e for e in ev if e["type"] == "message")
    assert msg["content"][0]["type"] == "tool_use" and msg["usage"] == {"input_tokens": 900, "output_tokens": 60}


def test_openai_unknown_cost_is_not_enforced_but_steps_are(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # a local server: a dummy key is sent
    srv = FakeOpenAI([tool_calls(("bash", {"command": "true"}), in_tokens=10 ** 6)] * 3)
    try:
        ctx, _ = context(tmp_path, "local", steps=2, cost_usd=0.0001)
        from harness.limits import LimitExceeded

        with pytest.raises(LimitExceeded) as e:
            make_agent("openai", base_url=srv.url).run(ctx)
    finally:
        srv.close()
    assert e.value.kind == "steps"  # not cost_usd: that budget cannot be enforced without a price
    assert {k.lower(): v for k, v in srv.requests[0]["headers"].items()}["authorization"] == "Bearer sk-no-key-local"


def test_openai_without_key_or_base_url_is_infra_error(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    ctx, _ = context(tmp_path, "gpt-x")
    with pytest.raises(AgentInfraError, match="OPENAI_API_KEY"):
        make_agent("openai").run(ctx)


def test_openai_gives_up_after_retries(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    srv = FakeOpenAI([429, 503, 429])
    try:
        ctx, _ = context(tmp_path, "m")
        with pytest.raises(AgentInfraError, match="after 3 attempts"):
            make_agent("openai", base_url=srv.url, max_retries=2, backoff_s=0.01).run(ctx)
    finally:
        srv.close()
    assert [e["status"] for e in events(tmp_path) if e["type"] == "api_error"] == [429, 503, 429]


def test_claude_same_loop_with_base_url_and_unknown_tool(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-x")
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    srv = FakeAnthropic([529, tool_use(("sysctl_set", {"name": "x", "value": "1"})),  # not offered on bash
                         tool_use(("bash", {"command": "true"})), tool_use(("finish", {}))])
    try:
        ctx, sb = context(tmp_path, "claude-sonnet-4-6")
        make_agent("claude", base_url=srv.url, backoff_s=0.01).run(ctx)
    finally:
        srv.close()
    assert ctx.notes["malformed_tool_calls"] == 1 and sb.cmds == ["true"]
    u = ctx.budget.usage
    assert u.steps == 3 and u.cost_usd == pytest.approx((3 * 1200 * 3 + 3 * 80 * 15) / 1e6)
    assert not any(e["type"] == "note" for e in events(tmp_path))
    assert srv.requests[1]["path"] == "/v1/messages"


def test_old_results_load_with_backend_filled():
    old = {"trial_id": "t", "workload": "sqlite", "agent": "claude", "usage": {"cost_usd": 0.5}}
    r = TrialResult.model_validate(old)
    assert r.backend == "anthropic" and r.malformed_tool_calls == 0
    assert TrialResult(trial_id="t", workload="w", agent="cli:claude-code").backend == "cli"
    assert TrialResult(trial_id="t", workload="w", agent="scx-search").backend == "none"
    assert TrialResult.model_validate_json(TrialResult(trial_id="t", workload="w", agent="openai",
                                                       usage={"cost_usd": None}).model_dump_json()).usage.cost_usd is None


def test_nudges_answer_a_reply_without_tool_call(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    srv = FakeOpenAI([tool_calls(text="I would tune the scheduler."), tool_calls(text="ok"),
                      tool_calls(("finish", {}))])
    try:
        ctx, _ = context(tmp_path, "m")
        make_agent("openai", base_url=srv.url, nudges=1).run(ctx)
    finally:
        srv.close()
    assert ctx.budget.usage.steps == 2 and len(srv.requests) == 2  # one nudge, then the episode ends
    ev = events(tmp_path)
    nudge = [e for e in ev if e["type"] == "message" and e["role"] == "harness"]
    assert len(nudge) == 1 and nudge[0]["text"].startswith("You called no tool")
    assert srv.requests[1]["body"]["messages"][-1] == {"role": "user", "content": nudge[0]["text"]}
