"""The agent loop shared by every agent that calls a model API with tool use (``claude``
on the Anthropic Messages API, ``openai`` on OpenAI-compatible Chat Completions).

One loop, one prompt, one retry policy, one trajectory format; a backend only says how to
build a client, send a request, and read the reply (:class:`Turn`). Per API call:

- the budget is checked, then the request is sent; 429, 5xx, connection errors and
  timeouts are retried with exponential backoff (each logged as ``api_error``); when
  retries run out the trial ends as ``infra_error``; other 4xx are not retried;
- tokens come from the API's usage fields (``BudgetTracker.add_call``: one step each);
- the reply is logged as a ``message`` event with Anthropic-style content blocks
  (``text``, ``tool_use``), whatever the backend;
- each tool call runs through :class:`harness.tools.TrialTools` (which logs it), except
  a *malformed* one (arguments that are not a JSON object, or a tool that was not
  offered): it is answered with an error, logged as ``malformed_tool_call`` and counted
  (``TrialResult.malformed_tool_calls``), and the episode goes on;
- a reply without a tool call, or ``finish``, ends the episode; with ``nudges`` (default
  0) a reply without a tool call is answered that many times with a reminder to use the
  tools or call finish (for small models that stop at once), logged as a ``harness``
  message.

Interfaces: ``bash`` (:data:`harness.tools.BASH_TOOLS`) or ``mcp`` (exactly what a real
MCP client session lists from the trial's MCP server over streamable HTTP).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from ..mcp_client import SyncMcpClient
from ..mcp_server import HttpServer, build_server
from ..tools import BASH_TOOLS, TrialTools, tool_defs
from .base import Agent, AgentContext, AgentInfraError

SYSTEM = (
    "You are an expert Linux performance engineer. You tune the kernel of a VM (sysctl, sched_ext "
    "BPF schedulers) for one application. Work in small verified steps; measure with run_workload. "
    "Call finish when the best configuration you found is in place."
)

NUDGE = "You called no tool. Act through a tool call, or call finish to stop. The tools: "


@dataclass
class ToolCall:
    id: str
    name: str
    args: dict | None  # None: the arguments were not a JSON object
    raw: str = ""  # the arguments as the model sent them, when they came as text
    error: str = ""


@dataclass
class Turn:
    """One model reply, backend-neutral."""

    content: list[dict]  # Anthropic-style blocks, for the trajectory
    calls: list[ToolCall]
    input_tokens: int
    output_tokens: int
    stop_reason: str | None
    message: dict = field(default_factory=dict)  # the reply as the backend's history wants it


class ChatAgent(Agent):
    """Base of the model-API agents. Subclasses set :attr:`backend`, :attr:`sdk` (the
    SDK module, whose exception classes drive the retry policy) and implement the hooks."""

    backend = "none"
    sdk = None
    default_model: str | None = None

    timeout_s = 120.0  # per API request

    def __init__(self, max_retries: int = 4, backoff_s: float = 1.0, max_tokens: int = 4096,
                 base_url: str | None = None, timeout_s: float | None = None, nudges: int = 0):
        self.max_retries, self.backoff_s, self.max_tokens = max_retries, backoff_s, max_tokens
        self.nudges = nudges
        if timeout_s:
            self.timeout_s = timeout_s
        self.base_url = base_url or None
        self.tools: list[dict] = []  # Anthropic-style definitions: name, description, input_schema

    # -- backend hooks -------------------------------------------------------------------
    def _check_key(self) -> None:
        """Raise AgentInfraError when the API cannot be called for lack of a key."""

    def _client(self):
        raise NotImplementedError

    def _request(self, client, ctx: AgentContext, messages: list):
        raise NotImplementedError

    def _turn(self, resp) -> Turn:
        raise NotImplementedError

    def _results(self, results: list[tuple[ToolCall, str]]) -> list[dict]:
        """Messages that carry the tool results back to the model."""
        raise NotImplementedError

    # -- shared --------------------------------------------------------------------------
    def _retryable(self) -> tuple:
        # 429, 5xx, connection errors and timeouts; and a 200 whose body is not the API's
        # JSON (garbage from a proxy or a broken server): the SDKs raise JSONDecodeError
        s = self.sdk
        return (s.RateLimitError, s.InternalServerError, s.APIConnectionError, s.APITimeoutError,
                s.APIResponseValidationError, json.JSONDecodeError)

    def _create(self, client, ctx: AgentContext, messages: list):
        for attempt in range(self.max_retries + 1):
            try:
                return self._request(client, ctx, messages)
            except self._retryable() as e:
                status = getattr(e, "status_code", None)
                ctx.trajectory.log("api_error", error=type(e).__name__, status=status, attempt=attempt,
                                   retry=attempt < self.max_retries)
                if attempt == self.max_retries:
                    raise AgentInfraError(f"model API unreachable after {attempt + 1} attempts: "
                                          f"{type(e).__name__} {status or ''}".strip()) from None
                time.sleep(min(30.0, self.backoff_s * 2 ** attempt))
            except self.sdk.APIStatusError as e:  # 4xx other than 429: not retryable
                ctx.trajectory.log("api_error", error=type(e).__name__, status=e.status_code, retry=False)
                raise AgentInfraError(f"model API refused the request: {e.status_code} {type(e).__name__}") from None
        raise AssertionError("unreachable")

    def run(self, ctx: AgentContext) -> None:
        self._check_key()
        tools = TrialTools(ctx, require_goal=not ctx.slo_hint)
        ctx.notes["tools"] = tools
        ctx.notes.setdefault("malformed_tool_calls", 0)
        if not ctx.budget.cost_enforced:
            ctx.trajectory.log("note", text=f"no price for model {ctx.model or self.default_model!r} in "
                               "harness/prices.yaml: its cost is recorded as unknown and the cost budget "
                               f"({ctx.budget.budget.cost_usd:g} USD) cannot be enforced")
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

    def _malformed(self, c: ToolCall, offered: set[str]) -> str:
        if c.args is None:
            return c.error or "the arguments are not a JSON object"
        if c.name not in offered:
            return f"unknown tool {c.name!r}"
        return ""

    def _loop(self, ctx: AgentContext, call, tools: TrialTools) -> None:
        client = self._client()
        offered = {t["name"] for t in self.tools}
        messages: list = [{"role": "user", "content": ctx.instruction}]
        nudges = self.nudges
        while True:
            ctx.budget.check()
            resp = self._create(client, ctx, messages)
            turn = self._turn(resp)
            ctx.budget.add_call(turn.input_tokens, turn.output_tokens)
            ctx.trajectory.log("message", role="assistant", content=turn.content, stop_reason=turn.stop_reason,
                               usage={"input_tokens": turn.input_tokens, "output_tokens": turn.output_tokens})
            messages.append(turn.message)
            if not turn.calls:
                if nudges > 0:
                    nudges -= 1
                    text = NUDGE + ", ".join(sorted(offered)) + "."
                    ctx.trajectory.log("message", role="harness", text=text)
                    messages.append({"role": "user", "content": text})
                    continue
                return  # the model ended its turn without a tool call: done
            results = []
            for c in turn.calls:
                why = self._malformed(c, offered)
                if why:
                    ctx.notes["malformed_tool_calls"] = ctx.notes.get("malformed_tool_calls", 0) + 1
                    ctx.trajectory.log("malformed_tool_call", id=c.id, name=c.name, reason=why,
                                       input=c.args if c.args is not None else c.raw[:4000])
                    out = (f"error: malformed tool call ({why}); call one of {', '.join(sorted(offered))} "
                           "with a JSON object of arguments")
                else:
                    out = call(c.name, c.args, c.id)
                results.append((c, out))
            messages.extend(self._results(results))
            if tools.finished.is_set():
                return


def parse_args(raw) -> tuple[dict | None, str, str]:
    """(arguments, raw text, error) from a tool call's arguments as the API sent them."""
    if isinstance(raw, dict):
        return raw, "", ""
    text = raw if isinstance(raw, str) else json.dumps(raw)
    if not text.strip():
        return {}, text, ""  # no arguments: an empty object
    try:
        v = json.loads(text)
    except ValueError as e:
        return None, text, f"arguments are not valid JSON: {e}"
    if not isinstance(v, dict):
        return None, text, f"arguments are not a JSON object: {type(v).__name__}"
    return v, text, ""
