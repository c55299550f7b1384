"""`claude`: an LLM agent on the Anthropic Messages API with tool use (the real SDK).

Interfaces (``--interface``): ``bash`` gives the tools ``bash`` (a command in the guest,
through the relay), ``write_file`` (a file in the guest; a copy is kept in the trial
folder), ``run_workload`` (a trial run of the benchmark whose numbers the agent may
see), ``finish``, plus ``declare_goal`` when the goal is hidden (``--no-slo-hint``);
``mcp`` gives exactly the tools a real MCP client session lists from the trial's MCP
server (``harness/mcp_server.py``, streamable HTTP on 127.0.0.1). Both run through
``harness/tools.py``, which logs every call. Each API call is one step of
the budget; tokens and cost (from ``harness/prices.yaml``) are counted as they come.
The loop, retry policy and trajectory format are shared with the ``openai`` agent
(``harness/agents/loop.py``).

``base_url`` (``schedcp run --base-url``): an Anthropic-compatible server instead of
api.anthropic.com (``ANTHROPIC_BASE_URL`` works too).

API errors: 429, 5xx, connection errors and timeouts are retried with exponential
backoff and logged to the trajectory; when retries run out the trial ends as
``infra_error``. The API key is read by the SDK from the host environment; it is never
sent to the guest, nor written to the trajectory or any log.
"""

from __future__ import annotations

import os

import anthropic

from .base import AgentContext, AgentInfraError
from .loop import SYSTEM, ChatAgent, ToolCall, Turn

# A current Sonnet (not on the SDK's deprecation list) whose price is in prices.yaml.
DEFAULT_MODEL = "claude-sonnet-4-6"

class ClaudeAgent(ChatAgent):
    name = "claude"
    backend = "anthropic"
    sdk = anthropic
    default_model = DEFAULT_MODEL

    def _check_key(self) -> None:
        if not os.environ.get("ANTHROPIC_API_KEY") and not self.base_url:
            raise AgentInfraError("ANTHROPIC_API_KEY is not set on the host")

    def _client(self) -> anthropic.Anthropic:
        # base_url: --base-url, else ANTHROPIC_BASE_URL when set (tests point it at a local server)
        key = None if os.environ.get("ANTHROPIC_API_KEY") else "no-key"  # a local server may need none
        return anthropic.Anthropic(max_retries=0, timeout=self.timeout_s, base_url=self.base_url, api_key=key)

    def _request(self, client, ctx: AgentContext, messages: list) -> anthropic.types.Message:
        return client.messages.create(model=ctx.model or DEFAULT_MODEL, max_tokens=self.max_tokens,
                                      system=SYSTEM, tools=self.tools, messages=messages)

    def _turn(self, resp) -> Turn:
        content = [b.model_dump(exclude_none=True) for b in resp.content]
        calls = [ToolCall(b.id, b.name, dict(b.input) if isinstance(b.input, dict) else None,
                          error="" if isinstance(b.input, dict) else "the input is not a JSON object")
                 for b in resp.content if b.type == "tool_use"]
        return Turn(content=content, calls=calls, input_tokens=resp.usage.input_tokens,
                    output_tokens=resp.usage.output_tokens, stop_reason=resp.stop_reason,
                    message={"role": "assistant", "content": content})

    def _results(self, results: list[tuple[ToolCall, str]]) -> list[dict]:
        return [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": c.id, "content": out}
                                             for c, out in results]}]
