"""`openai`: an LLM agent on an OpenAI-compatible Chat Completions API with tool calls
(the official ``openai`` SDK): api.openai.com, or any compatible server given with
``base_url`` (``schedcp run --base-url``: vLLM, llama.cpp / llama-cpp-python's server,
``schedcp local-model serve``, a gateway...).

Same tools (``harness/tools.py``), prompt, budgets, retry policy and trajectory format as
the ``claude`` agent: the loop is ``harness/agents/loop.py``. Tokens come from the
reply's ``usage`` (prompt/completion tokens); a model that ``harness/prices.yaml`` does
not list has an unknown cost (recorded as null) and its cost budget is not enforced.

The key is read from the host environment variable ``api_key_env`` (default
``OPENAI_API_KEY``); with a ``base_url`` and no key, a dummy key is sent (local servers
need none). The key is never sent to the guest nor written to any file.

Small models send malformed tool calls (arguments that are not JSON, tools that do not
exist): each is answered with an error, logged and counted, and the episode goes on.
"""

from __future__ import annotations

import os
import uuid

import openai

from .base import AgentContext, AgentInfraError
from .loop import SYSTEM, ChatAgent, ToolCall, Turn, parse_args


class OpenAIAgent(ChatAgent):
    name = "openai"
    backend = "openai"
    sdk = openai
    timeout_s = 600.0  # a local model on a CPU can be slow

    def __init__(self, api_key_env: str = "OPENAI_API_KEY", **kw):
        super().__init__(**kw)
        self.api_key_env = api_key_env

    def _check_key(self) -> None:
        if not os.environ.get(self.api_key_env) and not self.base_url:
            raise AgentInfraError(f"{self.api_key_env} is not set on the host (give --base-url for a local server)")

    def _client(self) -> openai.OpenAI:
        key = os.environ.get(self.api_key_env) or "sk-no-key-local"
        return openai.OpenAI(api_key=key, base_url=self.base_url, max_retries=0, timeout=self.timeout_s)

    def _request(self, client, ctx: AgentContext, messages: list):
        if not ctx.model:
            raise AgentInfraError("the openai agent needs a model name (--model)")
        tools = [{"type": "function", "function": {"name": t["name"], "description": t["description"],
                                                   "parameters": t["input_schema"]}} for t in self.tools]
        # api.openai.com's newer models take only max_completion_tokens; compatible servers
        # (llama.cpp, vLLM) know max_tokens
        limit = {"max_tokens" if self.base_url else "max_completion_tokens": self.max_tokens}
        # tool_choice explicit: some servers (llama-cpp-python's chatml-function-calling) offer
        # no tools without it
        return client.chat.completions.create(model=ctx.model, messages=[{"role": "system", "content": SYSTEM},
                                                                         *messages], tools=tools,
                                              tool_choice="auto", **limit)

    def _turn(self, resp) -> Turn:
        usage = resp.usage
        tin = (usage.prompt_tokens or 0) if usage else 0
        tout = (usage.completion_tokens or 0) if usage else 0
        if not resp.choices:
            return Turn(content=[], calls=[], input_tokens=tin, output_tokens=tout, stop_reason="no_choices",
                        message={"role": "assistant", "content": ""})
        ch = resp.choices[0]
        msg = ch.message
        content: list[dict] = [{"type": "text", "text": msg.content}] if msg.content else []
        calls, raw_calls = [], []
        for tc in msg.tool_calls or []:
            fn = getattr(tc, "function", None)
            name = getattr(fn, "name", None) or ""
            raw_args = getattr(fn, "arguments", None) or ""
            tid = tc.id or f"call_{uuid.uuid4().hex[:12]}"
            args, raw, err = parse_args(raw_args)
            calls.append(ToolCall(tid, name, args, raw=raw, error=err))
            content.append({"type": "tool_use", "id": tid, "name": name,
                            "input": args if args is not None else {"_unparsed_arguments": raw[:4000]}})
            raw_calls.append({"id": tid, "type": "function", "function": {"name": name, "arguments": raw_args
                                                                         if isinstance(raw_args, str) else str(raw_args)}})
        message: dict = {"role": "assistant", "content": msg.content or ""}
        if raw_calls:
            message["tool_calls"] = raw_calls
        return Turn(content=content, calls=calls, input_tokens=tin, output_tokens=tout,
                    stop_reason=ch.finish_reason, message=message)

    def _results(self, results: list[tuple[ToolCall, str]]) -> list[dict]:
        return [{"role": "tool", "tool_call_id": c.id, "content": out} for c, out in results]
