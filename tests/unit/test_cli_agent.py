"""`cli:claude-code`: the command line it gets, and the real Claude Code CLI (npm
@anthropic-ai/claude-code, installed by `make cli-agents`) driven by the scripted fake
Anthropic server: it reaches the trial only through the trial's MCP server, and its
disabled built-in tools (Bash, Write) are refused without touching the host."""

import json
import secrets
from pathlib import Path

import pytest

from harness.agents import known_agent, make_agent
from harness.agents.base import AgentContext, Trajectory
from harness.agents.cli_agent import find_bin
from harness.limits import BudgetTracker
from harness.models import Budget
from harness.workload import load_workload
from tests.fake_anthropic import FakeAnthropic, tool_use
from tests.unit.test_chat_agents import StubSandbox


def context(tmp_path, **budget):
    sb = StubSandbox()
    ctx = AgentContext(sandbox=sb, workload=load_workload("hackbench"), instruction="tune hackbench",
                       budget=BudgetTracker(Budget(**budget), "claude-sonnet-4-6"),
                       trajectory=Trajectory(tmp_path / "t.jsonl"), files_dir=tmp_path / "files",
                       model="claude-sonnet-4-6", trial_run=lambda: {"wall_s": 1.0}, interface="mcp")
    return ctx, sb


def test_command_line(tmp_path):
    assert known_agent("cli:claude-code") and not known_agent("cli:nothing")
    a = make_agent("cli:claude-code", bin="/x/claude", base_url="http://127.0.0.1:9/")
    ctx, _ = context(tmp_path, steps=7)
    cmd = a.command(ctx, "http://127.0.0.1:1234/mcp", tmp_path / "mcp.json")
    assert cmd[:3] == ["/x/claude", "-p", cmd[2]] and "tune hackbench" in cmd[2]
    opt = {cmd[i]: cmd[i + 1] for i in range(3, len(cmd) - 1) if cmd[i].startswith("--")}
    assert opt["--output-format"] == "stream-json" and "--verbose" in cmd and "--strict-mcp-config" in cmd
    assert json.loads(opt["--mcp-config"]) == {"mcpServers": {"schedcp": {"type": "http",
                                                                          "url": "http://127.0.0.1:1234/mcp"}}}
    assert opt["--tools"] == "" and opt["--permission-mode"] == "dontAsk" and opt["--max-turns"] == "7"
    allowed = opt["--allowedTools"].split(",")
    assert "mcp__schedcp__run_workload" in allowed and all(t.startswith("mcp__schedcp__") for t in allowed)
    assert "mcp__schedcp__declare_goal" not in allowed  # only offered without the SLO hint
    assert {"Bash", "Write", "Edit", "Read", "WebFetch"} <= set(opt["--disallowedTools"].split(","))
    env = a.env(tmp_path)
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9/" and env["HOME"] == str(tmp_path)
    assert not {"SSH_AUTH_SOCK", "OPENAI_API_KEY"} & set(env)
    ctx.model = None
    assert "--model" not in a.command(ctx, "u", tmp_path / "m.json")  # the CLI's own default


def test_claude_code_only_reaches_the_trial_through_mcp(tmp_path, monkeypatch):
    assert find_bin("claude"), "Claude Code is not installed: make test-tools"
    key = "sk-ant-test-" + secrets.token_hex(10)
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    marker, marker2 = tmp_path / "host" / "PWNED", tmp_path / "host" / "written.txt"
    marker.parent.mkdir()
    main = lambda b: any(t.get("name", "").startswith("mcp__schedcp__") for t in b.get("tools", []))  # noqa: E731
    srv = FakeAnthropic([
        tool_use(("Bash", {"command": f"touch {marker}", "description": "x"}),
                 ("Write", {"file_path": str(marker2), "content": "x"})),
        tool_use(("mcp__schedcp__sysctl_set", {"name": "kernel.sched_autogroup_enabled", "value": "0"})),
        tool_use(("mcp__schedcp__finish", {"summary": "done"})),
        {"id": "msg_end", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6",
         "content": [{"type": "text", "text": "finished"}], "stop_reason": "end_turn", "stop_sequence": None,
         "usage": {"input_tokens": 1000, "output_tokens": 5}},
    ], side=lambda b: not main(b))
    try:
        ctx, sb = context(tmp_path, steps=10, wall_s=300)
        make_agent("cli:claude-code", base_url=srv.url, grace_s=20).run(ctx)
    finally:
        srv.close()
    ev = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    # nothing happened on the host: no file, an empty working folder
    assert not marker.exists() and not marker2.exists()
    assert next(e for e in ev if e["type"] == "host_files")["created"] == []
    # the refusals are in the transcript (tool results with is_error for Bash and Write)
    results = [c for e in ev if e["type"] == "cli_event" and e["event"].get("type") == "user"
               for c in e["event"]["message"]["content"] if isinstance(c, dict) and c.get("type") == "tool_result"]
    refused = [r for r in results if r.get("is_error")]
    assert len(refused) == 2, results
    assert all("No such tool available" in r["content"] for r in refused), refused
    # what it did went through the trial's MCP server, into the (stub) guest
    calls = [e["name"] for e in ev if e["type"] == "tool_call"]
    assert calls == ["sysctl_set", "finish"]
    assert "sysctl -w kernel.sched_autogroup_enabled=0" in sb.cmds
    # Claude Code hands its model a result's structured content as JSON (not its text block:
    # finish's text is "finished")
    seen = [json.loads(r["content"]) for r in results if r["tool_use_id"].startswith("toolu_mcp__schedcp__")]
    assert [set(x) for x in seen] == [{"name", "old", "new"}, {"finished"}], seen
    assert seen[0]["name"] == "kernel.sched_autogroup_enabled" and seen[1] == {"finished": True}
    # the model saw only the MCP tools, and the main turns were the scripted ones
    offered = {t["name"] for r in srv.requests if main(r["body"]) for t in r["body"]["tools"]}
    assert offered and all(n.startswith("mcp__schedcp__") for n in offered)
    assert not {"Bash", "Write", "Read", "Edit"} & offered
    # steps and tokens from the transcript; the key is never written
    u = ctx.budget.usage
    assert u.steps >= 4 and u.input_tokens >= 3 * 1200 + 1000 and u.output_tokens >= 3 * 80
    assert key not in (tmp_path / "t.jsonl").read_text()
    exit_ev = next(e for e in ev if e["type"] == "cli_exit")
    assert exit_ev["returncode"] == 0, exit_ev
