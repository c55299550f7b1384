"""The MCP interface of a trial (RQ3): an MCP server, on the official ``mcp`` SDK, whose
tools act on one trial's sandbox through :class:`harness.tools.TrialTools`.

Transports: ``stdio`` (the client starts ``schedcp mcp serve --transport stdio``) and
``http`` (streamable HTTP on 127.0.0.1, served from a thread by :class:`HttpServer`;
the ``claude`` agent with ``--interface mcp`` and any external client connect to its
URL). Each tool call is logged to the trial's trajectory by TrialTools, so a trial
driven by any MCP client is recorded and measured the same way.
"""

from __future__ import annotations

import inspect
import socket
import threading

import anyio
from mcp.server.mcpserver import MCPServer

from .tools import MCP_TOOLS, SPECS, TrialTools

INSTRUCTIONS = ("Tools act on a throw-away Linux VM with sched_ext (kernel BPF schedulers) that runs one "
                "application. Observe it, tune its CPU scheduling and sysctls, measure with run_workload, and call "
                "finish when the best configuration is in place: the harness then measures it.")


_TYPES = {"string": str, "number": float, "boolean": bool}


def _make_tool(tools: TrialTools, name: str):
    """An async function whose signature mirrors the tool's JSON schema in SPECS, so the
    SDK derives the same schema the bash interface uses; the call runs in a thread."""
    schema = SPECS[name]["schema"]
    required = set(schema["required"])

    async def fn(**kwargs) -> str:
        args = {k: v for k, v in kwargs.items() if v is not None}
        return await anyio.to_thread.run_sync(tools.call, name, args)

    params, ann = [], {}
    for p, sch in schema["properties"].items():
        t = _TYPES[sch["type"]]
        t = t if p in required else t | None
        params.append(inspect.Parameter(p, inspect.Parameter.KEYWORD_ONLY, annotation=t,
                                        default=inspect.Parameter.empty if p in required else None))
        ann[p] = t
    fn.__signature__ = inspect.Signature(params, return_annotation=str)
    fn.__annotations__ = ann | {"return": str}
    fn.__name__ = fn.__qualname__ = name
    return fn


def build_server(tools: TrialTools, names: list[str] | None = None) -> MCPServer:
    srv = MCPServer("schedcp", instructions=INSTRUCTIONS, log_level="WARNING")
    for n in names or MCP_TOOLS:
        srv.tool(name=n, description=SPECS[n]["description"])(_make_tool(tools, n))
    return srv


class HttpServer:
    """Streamable-HTTP MCP server on 127.0.0.1 in a background thread (uvicorn)."""

    def __init__(self, server: MCPServer, port: int = 0):
        import uvicorn

        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        cfg = uvicorn.Config(server.streamable_http_app(), log_level="warning", lifespan="on")
        self.uv = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.uv.run, kwargs={"sockets": [self.sock]}, daemon=True,
                                       name="mcp-http")

    def start(self, timeout: float = 20.0) -> "HttpServer":
        self.thread.start()
        t = threading.Event()
        for _ in range(int(timeout / 0.05)):
            if self.uv.started:
                return self
            t.wait(0.05)
        raise RuntimeError(f"MCP HTTP server did not start on {self.url}")

    def stop(self) -> None:
        self.uv.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


async def serve_stdio(server: MCPServer, stdin_fd: int, stdout_fd: int, stop: threading.Event | None = None) -> None:
    """Serve on the given file descriptors until the client closes them or ``stop`` is set."""
    import io

    from mcp.server.stdio import stdio_server

    fin = anyio.wrap_file(io.TextIOWrapper(open(stdin_fd, "rb", buffering=0, closefd=False), encoding="utf-8"))
    fout = anyio.wrap_file(io.TextIOWrapper(open(stdout_fd, "wb", buffering=0, closefd=False), encoding="utf-8",
                                            write_through=True))
    low = server._lowlevel_server  # the SDK's own run loop over our streams
    async with anyio.create_task_group() as tg:
        async def watch():
            while stop is None or not stop.is_set():
                await anyio.sleep(0.2)
            tg.cancel_scope.cancel()

        async def run():
            async with stdio_server(stdin=fin, stdout=fout) as (r, w):
                await low.run(r, w, low.create_initialization_options())
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        tg.start_soon(run)
