"""The trial's MCP server as an outside client sees it: the official MCP Inspector CLI
(npm @modelcontextprotocol/inspector, pinned, installed into .cli-agents/ by `make
test-tools`) lists the tools over streamable HTTP, every one with an outputSchema, and
calls two, whose results are structured content (JSON objects) with a text rendering.
The server is the real one (build_server + HttpServer) on a fake guest: no VM."""

import json
import os
import subprocess
from pathlib import Path

from harness.agents.cli_agent import node_path
from harness.mcp_server import HttpServer, build_server
from harness.tools import MCP_TOOLS, SPECS
from tests.unit.test_mcp_server import FakeGuest, tools_for

REPO = Path(__file__).resolve().parents[2]
VERSION = "2.12.0"  # the pin of `make test-tools` (scripts/setup-test-tools.sh)
PACKAGE = REPO / ".cli-agents" / "node_modules" / "@modelcontextprotocol" / "inspector"
INSPECTOR = REPO / ".cli-agents" / "node_modules" / ".bin" / "mcp-inspector"
INSTALL = "make test-tools"


def inspector(url: str, home: Path, *args: str) -> dict:
    """Run ``mcp-inspector --cli`` against ``url``; its JSON result. Its state (catalog,
    client config) goes to ``home``, not to the user's."""
    assert INSPECTOR.is_file(), f"the MCP Inspector CLI is not installed: run `{INSTALL}`"
    version = json.loads((PACKAGE / "package.json").read_text())["version"]
    assert version == VERSION, f"MCP Inspector {version} installed, the tests pin {VERSION}: {INSTALL}"
    # the pinned Node.js 22 of `make test-tools` (.cli-agents/bin/node) comes first
    env = dict(os.environ, HOME=str(home), MCP_CATALOG_PATH=str(home / "catalog.json"),
               MCP_CLIENT_CONFIG_PATH=str(home / "client.json"), PATH=node_path())
    p = subprocess.run([str(INSPECTOR), "--cli", url, "--transport", "http", "--format", "json", *args],
                       env=env, capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        node = subprocess.run(["node", "--version"], env=env, capture_output=True, text=True).stdout.strip()
        raise AssertionError(f"mcp-inspector {' '.join(args)}: exit {p.returncode} under Node.js {node} (it asks "
                             f"for >= 22; it runs on 20, not on 18)\n{p.stderr[-3000:]}")
    return json.loads(p.stdout)["result"]


def test_the_inspector_lists_output_schemas_and_gets_structured_results(tmp_path):
    tools = tools_for(tmp_path, FakeGuest(), trial_run=lambda: {"wall_s": 4.2424242, "ops_per_s": 98765.4321})
    http = HttpServer(build_server(tools)).start()
    try:
        # --strict: the Inspector's tool-schema portability check fails the run on any error
        listed = inspector(http.url, tmp_path, "--method", "tools/list", "--strict")["tools"]
        ls = inspector(http.url, tmp_path, "--method", "tools/call", "--tool-name", "list_schedulers")
        run = inspector(http.url, tmp_path, "--method", "tools/call", "--tool-name", "run_workload")
    finally:
        http.stop()
    assert [t["name"] for t in listed] == MCP_TOOLS
    for t in listed:
        model = SPECS[t["name"]]["result"].model_json_schema()
        assert t["outputSchema"]["type"] == "object", t["name"]
        assert t["outputSchema"]["properties"].keys() == model["properties"].keys(), t["name"]
    # an object, not JSON text in a string
    assert ls["isError"] is False
    assert ls["structuredContent"] == {
        "prebuilt": ["scx_central", "scx_simple"], "custom": ["fifo"],
        "hint": "prebuilt binaries in /opt/schedcp/scx/bin, sources in /opt/schedcp/scx/src"}
    assert [c["type"] for c in ls["content"]] == ["text"]
    assert json.loads(ls["content"][0]["text"]) == ls["structuredContent"]
    # full precision in the structured content, a few significant digits in the text
    assert run["structuredContent"] == {"metrics": {"wall_s": 4.2424242, "ops_per_s": 98765.4321}}
    assert json.loads(run["content"][0]["text"]) == {"metrics": {"wall_s": 4.242, "ops_per_s": 98765}}
