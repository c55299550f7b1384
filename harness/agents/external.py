"""`external`: any MCP client drives the trial (an external coding agent, a person with an
MCP inspector, another framework). The trial offers its MCP server (the same tools as
``claude --interface mcp``) and waits; the harness measures and scores whatever the
client left in place, like for any other agent.

Transports: ``http`` (streamable HTTP on 127.0.0.1; the URL is written to
``<trial>/mcp.json`` and announced as an ``mcp_ready`` event) or ``stdio`` (the
process's own stdin/stdout, when ``schedcp mcp serve --transport stdio`` was started by
the client). The agent phase ends when the client calls ``finish`` or the budget runs
out (each tool call is one step; wall time as usual). A stdio client that goes away
before ``finish`` (it closes our stdin, or the server process gets SIGTERM, which an MCP
client sends when it shuts its server down) ends the trial at once: the tuned VM is
destroyed right away and :class:`McpClientGone` makes the trial an ``agent_error``;
there is nobody left to measure for.
"""

from __future__ import annotations

import contextlib
import json
import threading

import anyio

from ..limits import LimitExceeded
from ..mcp_server import HttpServer, build_server, serve_stdio
from ..tools import TrialTools
from .base import Agent, AgentContext

# a finish call that raced the client's disconnect (sent, then stdin closed at once) gets
# this long to register before the disconnect counts as "before finish"
FINISH_GRACE_S = 0.3


class McpClientGone(Exception):
    """The MCP client went away before calling ``finish``: the trial ends (agent_error)
    without being measured, its VMs destroyed."""

    ends_trial = True  # for the trial: nothing left to measure, close the VMs


class ExternalAgent(Agent):
    name = "external"
    description = "any MCP client drives the trial (schedcp mcp serve, stdio or HTTP)"

    def __init__(self, transport: str = "http", port: int = 0, stdio_fds: tuple[int, int] | None = None,
                 stdio_session: dict | None = None):
        """``stdio_session``: shared with the caller (``schedcp mcp serve``). The stdio
        transport fills it with ``thread`` (the server's) and ``hold``/``report``: the
        caller sets ``report["data"]`` (the report as a JSON object) and then ``hold`` once
        the trial is measured, and the client's pending ``finish`` call returns it. Either
        transport reads ``gone`` (an Event; set by the caller on SIGTERM, with
        ``gone_reason``) and sets it itself when the stdio client closes the session before
        ``finish``."""
        if transport not in ("http", "stdio"):
            raise ValueError(f"transport must be http or stdio, not {transport!r}")
        self.transport, self.port, self.stdio_fds = transport, port, stdio_fds
        self.stdio_session = stdio_session if stdio_session is not None else {}

    def run(self, ctx: AgentContext) -> None:
        tools = TrialTools(ctx, require_goal=not ctx.slo_hint, count_steps=True)
        ctx.notes["tools"] = tools
        server = build_server(tools)
        sess = self.stdio_session
        gone: threading.Event = sess.setdefault("gone", threading.Event())

        def wait_end() -> None:  # finish, a budget hit, the wall-time timer, or the client gone
            while not (tools.finished.wait(0.1) or gone.is_set()):
                pass

        # the wall budget ends the episode even if the client never calls finish
        timer = threading.Timer(max(1.0, ctx.budget.remaining_s), tools.finished.set)
        timer.daemon = True
        timer.start()
        try:
            if self.transport == "stdio":
                fin, fout = self.stdio_fds or (0, 1)
                sess.setdefault("hold", threading.Event())
                sess.setdefault("report", {})
                tools.finish_hold, tools.finish_report = sess["hold"], sess["report"]

                def client_closed() -> None:  # our stdin reached EOF: the client is gone
                    if not tools.finished.is_set():
                        sess.setdefault("gone_reason", "MCP client disconnected before finish")
                        gone.set()

                def serve():
                    try:
                        anyio.run(serve_stdio, server, fin, fout, None, client_closed)
                    finally:
                        client_closed()  # the session ended (EOF, a broken pipe, an error)

                sess["thread"] = threading.Thread(target=serve, name="mcp-stdio", daemon=True)
                ctx.trajectory.log("mcp_ready", url="stdio", transport="stdio")
                sess["thread"].start()
                wait_end()
            else:
                http = HttpServer(server, self.port).start()
                try:
                    if ctx.trial_dir is not None:
                        (ctx.trial_dir / "mcp.json").write_text(json.dumps({"url": http.url, "transport": "http"}))
                    ctx.trajectory.log("mcp_ready", url=http.url, transport="http")
                    wait_end()
                finally:
                    http.stop()
        finally:
            timer.cancel()
        if gone.is_set() and not tools.finished.wait(FINISH_GRACE_S):
            self._client_gone(ctx, sess.get("gone_reason") or "MCP client disconnected before finish")
        if tools.limit is not None:
            raise tools.limit
        if ctx.budget.remaining_s <= 0:  # the client never finished: recorded as budget_exceeded
            raise LimitExceeded("wall_s", ctx.budget.budget.wall_s - ctx.budget.remaining_s, ctx.budget.budget.wall_s)

    @staticmethod
    def _client_gone(ctx: AgentContext, reason: str) -> None:
        """End the trial now: nobody is left to finish it, so the tuned VM is destroyed at
        once (its console kept) rather than measured, and the trial is an agent_error."""
        ctx.trajectory.log("message", role="harness", text=f"{reason}: the trial ends unmeasured, its VMs destroyed")
        with contextlib.suppress(Exception):
            ctx.sandbox.close(keep_console=ctx.trial_dir / "console.log" if ctx.trial_dir is not None else None)
        raise McpClientGone(reason)
