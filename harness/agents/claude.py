"""`claude`: an LLM agent on the Anthropic Messages API with tool use (the real SDK).

Interfaces (``--interface``): ``bash`` gives the tools ``bash`` (a command in the guest,
through the relay), ``write_file`` (a file in the guest; a copy is kept in the trial
folder), ``run_workload`` (a trial run of the benchmark whose numbers the agent may
see), ``finish``, plus ``declare_goal`` when the goal is hidden (``--no-slo-hint``);
``mcp`` gives exactly the tools a real MCP client session lists from the trial's MCP
server (``harness/mcp_server.py``, streamable HTTP on 127.0.0.1). Both run through
``harness/tools.py``, which logs every call. Each API call is one step of
the budget; tokens and cost (from ``harness/prices.yaml``) are counted as they come.

API errors: 429, 5xx, connection errors and timeouts are retried with exponential
backoff and logged to the trajectory; when retries run out the trial ends as
``infra_error``. The API key is read by the SDK from the host environment; it is never
sent to the guest, nor written to the trajectory or any log.
"""

from __future__ import annotations

import json
import os
import time

import anthropic

from ..mcp_client import SyncMcpClient
from ..mcp_server import HttpServer, build_server
from ..tools import BASH_TOOLS, TrialTools, tool_defs
from .base import Agent, AgentContext, AgentInfraError

SYSTEM = (
    "You are an expert Linux performance engineer. You tune the kernel of a VM (sysctl, sched_ext "
    "BPF schedulers) for one application. Work in small verified steps; measure with run_workload. "
    "Call finish when the best configuration you found is in place."
)

# A current Sonnet (not on the SDK's deprecation list) whose price is in prices.yaml.
DEFAULT_MODEL = "claude-sonnet-4-6"

# 429, 5xx, connection errors and timeouts; and a 200 whose body is not the API's JSON
# (garbage from a proxy or a broken server): the SDK raises JSONDecodeError for that.
RETRYABLE = (anthropic.RateLimitError, anthropic.InternalServerError, anthropic.APIConnectionError,
             anthropic.APITimeoutError, anthropic.APIResponseValidationError, json.JSONDecodeError)


class ClaudeAgent(Agent):
    name = "claude"

    def __init__(self, max_retries: int = 4, backoff_s: float = 1.0, max_tokens: int = 4096, timeout_s: float = 120.0):
        self.max_retries, self.backoff_s, self.max_tokens = max_retries, backoff_s, max_tokens
        self.timeout_s = timeout_s
        self.tools: list[dict] = []

    def _client(self) -> anthropic.Anthropic:
        # base_url comes from ANTHROPIC_BASE_URL when set (tests point it at a local server).
        return anthropic.Anthropic(max_retries=0, timeout=self.timeout_s)

    def _create(self, client, ctx: AgentContext, messages: list) -> anthropic.types.Message:
        for attempt in range(self.max_retries + 1):
            try:
                return client.messages.create(model=ctx.model or DEFAULT_MODEL, max_tokens=self.max_tokens,
                                              system=SYSTEM, tools=self.tools, messages=messages)
            except RETRYABLE as e:
                status = getattr(e, "status_code", None)
                ctx.trajectory.log("api_error", error=type(e).__name__, status=status, attempt=attempt,
                                   retry=attempt < self.max_retries)
                if attempt == self.max_retries:
                    raise AgentInfraError(f"model API unreachable after {attempt + 1} attempts: "
                                          f"{type(e).__name__} {status or ''}".strip()) from None
                time.sleep(min(30.0, self.backoff_s * 2 ** attempt))
            except anthropic.APIStatusError as e:  # 4xx other than 429: not retryable
                ctx.trajectory.log("api_error", error=type(e).__name__, status=e.status_code, retry=False)
                raise AgentInfraError(f"model API refused the request: {e.status_code} {type(e).__name__}") from None
        raise AssertionError("unreachable")

    def run(self, ctx: AgentContext) -> None:
        if not os.environ.get("ANTHROPIC_API_KEY"):
            raise AgentInfraError("ANTHROPIC_API_KEY is not set on the host")
        tools = TrialTools(ctx, require_goal=not ctx.slo_hint)
        ctx.notes["tools"] = tools
        if ctx.interface == "mcp":
            # the model sees only what a real MCP client session lists, over streamable HTTP
            server = HttpServer(build_server(tools)).start()
            client = None
            try:
                client = SyncMcpClient(server.url)
                self.tools = [{"name": t.name, "description": t.description or "",
                               "input_schema": t.input_schema} for t in client.list_tools()]
                ctx.trajectory.log("interface", kind="mcp", url=server.url, tools=[t["name"] for t in self.tools])
                self._loop(ctx, lambda name, args, _id: client.call_tool(name, args)[0], tools)
            finally:
                if client is not None:
                    client.close()
                server.stop()
        else:
            names = BASH_TOOLS + ([] if ctx.slo_hint else ["declare_goal"])
            self.tools = tool_defs(names)
            ctx.trajectory.log("interface", kind="bash", tools=names)
            self._loop(ctx, lambda name, args, _id: tools.call(name, args, call_id=_id), tools)

    def _loop(self, ctx: AgentContext, call, tools: TrialTools) -> None:
        client = self._client()
        messages: list = [{"role": "user", "content": ctx.instruction}]
        while True:
            ctx.budget.check()
            resp = self._create(client, ctx, messages)
            ctx.budget.add_call(resp.usage.input_tokens, resp.usage.output_tokens)
            content = [b.model_dump(exclude_none=True) for b in resp.content]
            ctx.trajectory.log("message", role="assistant", content=content, stop_reason=resp.stop_reason,
                               usage={"input_tokens": resp.usage.input_tokens,
                                      "output_tokens": resp.usage.output_tokens})
            messages.append({"role": "assistant", "content": content})
            uses = [b for b in resp.content if b.type == "tool_use"]
            if not uses:
                return  # the model ended its turn without a tool call: done
            results = []
            for b in uses:
                out = call(b.name, dict(b.input), b.id)
                results.append({"type": "tool_result", "tool_use_id": b.id, "content": out})
            messages.append({"role": "user", "content": results})
            if tools.finished.is_set():
                return
