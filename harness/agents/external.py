"""`external`: any MCP client drives the trial (an external coding agent, a person with an
MCP inspector, another framework). The trial offers its MCP server (the same tools as
``claude --interface mcp``) and waits; the harness measures and scores whatever the
client left in place, like for any other agent.

Transports: ``http`` (streamable HTTP on 127.0.0.1; the URL is written to
``<trial>/mcp.json`` and announced as an ``mcp_ready`` event) or ``stdio`` (the
process's own stdin/stdout, when ``schedcp mcp serve --transport stdio`` was started by
the client). The agent phase ends when the client calls ``finish``, closes stdio, or
the budget runs out (each tool call is one step; wall time as usual).
"""

from __future__ import annotations

import json
import threading

import anyio

from ..limits import LimitExceeded
from ..mcp_server import HttpServer, build_server, serve_stdio
from ..tools import TrialTools
from .base import Agent, AgentContext


class ExternalAgent(Agent):
    name = "external"

    def __init__(self, transport: str = "http", port: int = 0, stdio_fds: tuple[int, int] | None = None,
                 stdio_session: dict | None = None):
        """``stdio_session``: filled by the stdio transport with ``thread`` (the server's) and
        ``hold``/``report``: the caller sets ``report["text"]`` and then ``hold`` once the
        trial is measured, and the client's pending ``finish`` call returns that text."""
        if transport not in ("http", "stdio"):
            raise ValueError(f"transport must be http or stdio, not {transport!r}")
        self.transport, self.port, self.stdio_fds = transport, port, stdio_fds
        self.stdio_session = stdio_session if stdio_session is not None else {}

    def run(self, ctx: AgentContext) -> None:
        tools = TrialTools(ctx, require_goal=not ctx.slo_hint, count_steps=True)
        ctx.notes["tools"] = tools
        server = build_server(tools)
        # the wall budget ends the episode even if the client never calls finish
        timer = threading.Timer(max(1.0, ctx.budget.remaining_s), tools.finished.set)
        timer.daemon = True
        timer.start()
        try:
            if self.transport == "stdio":
                fin, fout = self.stdio_fds or (0, 1)
                sess = self.stdio_session
                sess.setdefault("hold", threading.Event())
                sess.setdefault("report", {})
                tools.finish_hold, tools.finish_report = sess["hold"], sess["report"]

                def serve():
                    try:
                        anyio.run(serve_stdio, server, fin, fout, None)
                    finally:
                        tools.finished.set()  # the client went away: the episode is over

                sess["thread"] = threading.Thread(target=serve, name="mcp-stdio", daemon=True)
                ctx.trajectory.log("mcp_ready", url="stdio", transport="stdio")
                sess["thread"].start()
                tools.finished.wait()
            else:
                http = HttpServer(server, self.port).start()
                try:
                    if ctx.trial_dir is not None:
                        (ctx.trial_dir / "mcp.json").write_text(json.dumps({"url": http.url, "transport": "http"}))
                    ctx.trajectory.log("mcp_ready", url=http.url, transport="http")
                    tools.finished.wait()
                finally:
                    http.stop()
        finally:
            timer.cancel()
        if tools.limit is not None:
            raise tools.limit
        if ctx.budget.remaining_s <= 0:  # the client never finished: recorded as budget_exceeded
            raise LimitExceeded("wall_s", ctx.budget.budget.wall_s - ctx.budget.remaining_s, ctx.budget.budget.wall_s)
