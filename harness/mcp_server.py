"""The MCP interface of a trial (RQ3): an MCP server, on the official ``mcp`` SDK, whose
tools act on one trial's sandbox through :class:`harness.tools.TrialTools`.

Transports: ``stdio`` (the client starts ``schedcp mcp serve --transport stdio``) and
``http`` (streamable HTTP on 127.0.0.1, served from a thread by :class:`HttpServer`;
the ``claude`` agent with ``--interface mcp`` and any external client connect to its
URL). Each tool call is logged to the trial's trajectory by TrialTools, so a trial
driven by any MCP client is recorded and measured the same way.

Every tool declares an outputSchema (its result model in :data:`harness.tools.SPECS`) and
answers with structured content (a JSON object, full precision) plus a text block that
renders it (compact JSON with readable numbers: what the bash interface's agent reads
too). A tool's own failure (refused, bad input, a guest error) is a text-only result with
isError set.
"""

from __future__ import annotations

import inspect
import socket
import threading
from typing import Annotated, Callable

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent

from .tools import MCP_TOOLS, SPECS, TrialTools

INSTRUCTIONS = ("Tools act on a throw-away Linux VM with sched_ext (kernel BPF schedulers) that runs one "
                "application. Observe it, tune its CPU scheduling and sysctls, measure with run_workload, and call "
                "finish when the best configuration is in place: the harness then measures it.")


_TYPES = {"string": str, "number": float, "boolean": bool}


def _make_tool(tools: TrialTools, name: str):
    """An async function whose signature mirrors the tool's argument schema in SPECS, so
    the SDK derives the same input schema the bash interface uses, and whose return
    annotation names the tool's result model, so the SDK publishes it as the outputSchema
    and checks each result against it. The call runs in a thread and returns the result as
    structured content plus its text (:func:`harness.tools.result_text`); an error result
    is text only, with isError set."""
    schema = SPECS[name]["schema"]
    required = set(schema["required"])
    returns = Annotated[CallToolResult, SPECS[name]["result"]]

    async def fn(**kwargs) -> CallToolResult:
        args = {k: v for k, v in kwargs.items() if v is not None}
        r = await anyio.to_thread.run_sync(tools.call_result, name, args)
        return CallToolResult(content=[TextContent(type="text", text=r.text)], structured_content=r.data,
                              is_error=r.is_error)

    params, ann = [], {}
    for p, sch in schema["properties"].items():
        t = _TYPES[sch["type"]]
        t = t if p in required else t | None
        params.append(inspect.Parameter(p, inspect.Parameter.KEYWORD_ONLY, annotation=t,
                                        default=inspect.Parameter.empty if p in required else None))
        ann[p] = t
    fn.__signature__ = inspect.Signature(params, return_annotation=returns)
    fn.__annotations__ = ann | {"return": returns}
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


class _EofWatch:
    """An async line iterator over ``f`` that calls ``on_eof`` the moment ``f`` ends (the
    client closed our stdin), before the SDK's session winds down (which waits for tool
    calls still running)."""

    def __init__(self, f, on_eof: Callable[[], None] | None):
        self.f, self.on_eof = f, on_eof

    async def __aiter__(self):
        async for line in self.f:
            yield line
        if self.on_eof is not None:
            self.on_eof()


async def serve_stdio(server: MCPServer, stdin_fd: int, stdout_fd: int, stop: threading.Event | None = None,
                      on_eof: Callable[[], None] | None = None) -> None:
    """Serve on the given file descriptors until the client closes them or ``stop`` is set.
    ``on_eof`` is called as soon as the client closes its end of ``stdin_fd``."""
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
            async with stdio_server(stdin=_EofWatch(fin, on_eof), stdout=fout) as (r, w):
                await low.run(r, w, low.create_initialization_options())
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        tg.start_soon(run)


# -- the server process's VMs outlive nothing --------------------------------------------------
# An MCP client shuts its stdio server down by closing stdin, then SIGTERM, then SIGKILL
# of the server's whole process group, a few seconds apart (the SDK's stdio_client: 2 s
# each). A trial that cannot finish its clean-up in that time would leave its VMs running
# (libvirt's, not our children). So `schedcp mcp serve` starts this watchdog: a process in
# a session of its own (the group kill spares it) that waits for the end of a pipe only
# the server holds, i.e. for the server's death however it happens, and then destroys the
# job's VMs that no live process holds any more.
_REAPER = """
import sys
from harness.mcp_server import reap_job  # imported first: the clean-up starts at once
sys.stdin.buffer.read()  # EOF: the server process is gone
reap_job(sys.argv[1])
"""


def job_domains(job_id: str, conn=None) -> list[str]:
    """Names of the libvirt domains of this ``SCHEDCP_HOME`` whose metadata names job ``job_id``."""
    import xml.etree.ElementTree as ET

    import libvirt

    from sandbox.libvirt import prereqs
    from sandbox.libvirt.backend import domain_prefix
    from sandbox.libvirt.domain import SCHEDCP_NS

    conn = conn or prereqs.connect()
    out = []
    for dom in conn.listAllDomains():
        if not dom.name().startswith(domain_prefix()):
            continue
        try:
            meta = ET.fromstring(dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, SCHEDCP_NS))
        except (libvirt.libvirtError, ET.ParseError):
            continue
        if meta.get("job") == job_id:
            out.append(dom.name())
    return out


def _run_dir_job(d) -> str | None:
    """The job named in the metadata of the domain a run folder was made for."""
    import xml.etree.ElementTree as ET

    from sandbox.libvirt.domain import SCHEDCP_NS

    try:
        meta = ET.parse(d / "domain.xml").getroot().find(f"metadata/{{{SCHEDCP_NS}}}sandbox")
    except (OSError, ET.ParseError):
        return None
    return None if meta is None else meta.get("job")


def reap_job(job_id: str) -> list[str]:
    """Destroy the VMs of job ``job_id`` and remove their run folders (saved states of
    checkpoints included), where no live process holds them any more (their process
    died); returns their names."""
    from sandbox.libvirt import prereqs
    from sandbox.libvirt.backend import _destroy_by_name, _reclaim_run_dir, run_root

    conn = prereqs.connect()
    gone = []
    rr = run_root()
    for d in sorted(rr.iterdir()) if rr.is_dir() else []:
        # _reclaim_run_dir: only when the folder's lock is free (a live process holds it otherwise)
        if d.is_dir() and _run_dir_job(d) == job_id and _reclaim_run_dir(conn, d):
            gone.append(d.name)
    for name in job_domains(job_id, conn):
        if not (rr / name).is_dir():  # a domain without its run folder: nobody holds it
            _destroy_by_name(conn, name)
            gone.append(name)
    return gone


def start_reaper(job_id: str):
    """Start the watchdog for job ``job_id`` (see ``_REAPER``); keep the returned Popen
    referenced for the whole life of this process (its stdin is the pipe)."""
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", _REAPER, job_id], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            close_fds=True)
