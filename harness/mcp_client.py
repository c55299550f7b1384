"""A synchronous handle on an MCP client session (the official SDK's ``mcp.Client``),
for agents whose loop is synchronous: the session lives in an event loop on its own
thread, and each call waits for its result."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

from mcp import Client


class SyncMcpClient:
    def __init__(self, server, timeout: float = 900.0):
        """``server``: a URL (streamable HTTP) or ``mcp.StdioServerParameters``."""
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self.timeout = timeout
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="mcp-client")
        self.thread.start()
        self._stack = contextlib.AsyncExitStack()
        self.client: Client = self._call(self._enter(server))

    async def _enter(self, server) -> Client:
        return await self._stack.enter_async_context(Client(server))

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(self.timeout)

    def list_tools(self) -> list:
        return self._call(self.client.list_tools()).tools

    def call_tool(self, name: str, args: dict) -> tuple[str, bool]:
        """(text of the result, is_error)."""
        r = self._call(self.client.call_tool(name, args))
        text = "\n".join(getattr(c, "text", "") for c in r.content)
        return text, bool(getattr(r, "is_error", False))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._call(self._stack.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
