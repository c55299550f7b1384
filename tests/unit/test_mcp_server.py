"""The MCP server's tool list matches the shared tool table (harness/tools.py), over a
real MCP client session (the SDK's in-process transport and streamable HTTP)."""

import asyncio
import json

from mcp import Client

from harness.agents.base import AgentContext, Trajectory
from harness.limits import BudgetTracker
from harness.mcp_server import HttpServer, build_server
from harness.models import Budget
from harness.tools import MCP_TOOLS, SPECS, TrialTools
from harness.workload import load_workload


def tools_for(tmp_path, **kw):
    ctx = AgentContext(sandbox=None, workload=load_workload("hackbench"), instruction="", budget=BudgetTracker(Budget()),
                       trajectory=Trajectory(tmp_path / "t.jsonl"), files_dir=tmp_path / "files")
    return TrialTools(ctx, **kw)


def test_tool_list_and_schemas_match_the_table(tmp_path):
    srv = build_server(tools_for(tmp_path))

    async def go():
        async with Client(srv) as c:
            return (await c.list_tools()).tools

    listed = {t.name: t for t in asyncio.run(go())}
    assert list(listed) == MCP_TOOLS
    for name, t in listed.items():
        assert t.description == SPECS[name]["description"]
        want = SPECS[name]["schema"]
        assert set(t.input_schema["properties"]) == set(want["properties"]), name
        assert set(t.input_schema.get("required", [])) == set(want["required"]), name


def test_goal_gate_and_declaration_over_http(tmp_path):
    tools = tools_for(tmp_path, require_goal=True)
    http = HttpServer(build_server(tools)).start()

    async def go():
        async with Client(http.url) as c:
            r1 = await c.call_tool("sysctl_set", {"name": "kernel.sched_autogroup_enabled", "value": "0"})
            r2 = await c.call_tool("declare_goal", {"metric": "runtime", "direction": "lower", "rationale": "r"})
            r3 = await c.call_tool("declare_goal", {"metric": "x", "direction": "higher"})
            return [x.content[0].text for x in (r1, r2, r3)]

    try:
        refused, ok, again = asyncio.run(go())
    finally:
        http.stop()
    assert refused.startswith("refused: call declare_goal")
    assert json.loads(ok) == {"recorded": True}  # the agent is not told whether it was right
    assert "already declared" in again
    assert tools.goal["correct"] is True and tools.goal["declared"]["metric"] == "runtime"
    kinds = [json.loads(x)["type"] for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert kinds.count("tool_call") == 3 and kinds.count("tool_result") == 3 and "goal" in kinds
