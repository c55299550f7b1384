"""`claude`: an LLM agent on the Anthropic Messages API with tool use (the real SDK).

Tools: ``bash`` (a command in the guest, through the relay), ``write_file`` (a file in
the guest; a copy is kept in the trial folder), ``run_workload`` (a trial run of the
benchmark whose numbers the agent may see), ``finish``. Each API call is one step of
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

from ..limits import LimitExceeded
from .base import Agent, AgentContext, AgentInfraError

SYSTEM = (
    "You are an expert Linux performance engineer. You tune the kernel of a VM (sysctl, sched_ext "
    "BPF schedulers) for one application. Work in small verified steps; measure with run_workload. "
    "Call finish when the best configuration you found is in place."
)

TOOLS = [
    {"name": "bash", "description": "Run a bash command as root in the VM. Returns exit code, stdout, stderr. "
     "Commands are killed at `timeout` seconds (default 120). Start long-running processes with setsid -f.",
     "input_schema": {"type": "object", "properties": {"command": {"type": "string"},
                                                       "timeout": {"type": "number"}}, "required": ["command"]}},
    {"name": "write_file", "description": "Write a text file in the VM (e.g. a scheduler's .bpf.c source).",
     "input_schema": {"type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
                      "required": ["path", "content"]}},
    {"name": "run_workload", "description": "Run the application's benchmark once with the current configuration "
     "and return its metrics.", "input_schema": {"type": "object", "properties": {}}},
    {"name": "finish", "description": "Stop: the current configuration is your final answer.",
     "input_schema": {"type": "object", "properties": {"summary": {"type": "string"}}}},
]

RETRYABLE = (anthropic.RateLimitError, anthropic.InternalServerError, anthropic.APIConnectionError,
             anthropic.APITimeoutError)


class ClaudeAgent(Agent):
    name = "claude"

    def __init__(self, max_retries: int = 4, backoff_s: float = 1.0, max_tokens: int = 4096):
        self.max_retries, self.backoff_s, self.max_tokens = max_retries, backoff_s, max_tokens

    def _client(self) -> anthropic.Anthropic:
        # base_url comes from ANTHROPIC_BASE_URL when set (tests point it at a local server).
        return anthropic.Anthropic(max_retries=0, timeout=120.0)

    def _create(self, client, ctx: AgentContext, messages: list) -> anthropic.types.Message:
        for attempt in range(self.max_retries + 1):
            try:
                return client.messages.create(model=ctx.model or "claude-sonnet-4-5", max_tokens=self.max_tokens,
                                              system=SYSTEM, tools=TOOLS, messages=messages)
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

    def _tool(self, ctx: AgentContext, name: str, args: dict) -> tuple[str, bool]:
        if name == "bash":
            r = ctx.run(str(args.get("command", "")), timeout=float(args.get("timeout", 120)))
            body = {k: r[k] for k in ("returncode", "stdout", "stderr", "timed_out", "truncated")}
            return json.dumps(body), False
        if name == "write_file":
            ctx.write_file(str(args["path"]), str(args["content"]))
            return f"wrote {args['path']}", False
        if name == "run_workload":
            return json.dumps(ctx.trial_run()), False
        if name == "finish":
            return "finished", True
        return f"unknown tool {name!r}", False

    def run(self, ctx: AgentContext) -> None:
        if not os.environ.get("ANTHROPIC_API_KEY"):
            raise AgentInfraError("ANTHROPIC_API_KEY is not set on the host")
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
            results, done = [], False
            for b in uses:
                ctx.trajectory.log("tool_call", id=b.id, name=b.name, input=b.input)
                try:
                    out, fin = self._tool(ctx, b.name, dict(b.input))
                except LimitExceeded:
                    raise
                except (KeyError, TypeError, ValueError) as e:
                    out, fin = f"bad tool input: {e}", False
                ctx.trajectory.log("tool_result", id=b.id, output=out[:20000])
                results.append({"type": "tool_result", "tool_use_id": b.id, "content": out})
                done |= fin
            messages.append({"role": "user", "content": results})
            if done:
                return
