"""A stdio MCP client that goes away before `finish` ends the trial (issue 20, deliver 8):
the real `schedcp mcp serve` under the real `mcp` SDK client, real VMs. The trial is an
`agent_error` saying the client went away, and no libvirt domain of it is left running
moments later, whether the client shuts the server down the SDK's way (stdin closed, then
SIGTERM, then SIGKILL of its process group) or dies itself (the server sees only EOF)."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest
from mcp import Client, StdioServerParameters

from sandbox.libvirt import prereqs
from harness.mcp_server import _run_dir_job
from sandbox.libvirt.backend import domain_prefix, run_root
from sandbox.libvirt.domain import SCHEDCP_NS

REPO = Path(__file__).resolve().parents[2]
GONE_WITHIN_S = 15.0  # from the client's exit to no domain of the trial left running


def running_domains(job: str) -> list[str]:
    """Active libvirt domains of this SCHEDCP_HOME whose metadata names ``job``."""
    conn = prereqs.connect()
    out = []
    for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
        if not dom.name().startswith(domain_prefix()):
            continue
        try:
            meta = ET.fromstring(dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, SCHEDCP_NS))
        except libvirt.libvirtError:
            continue
        if meta.get("job") == job:
            out.append(f"{dom.name()} ({meta.get('trial')})")
    return out


def run_dirs(job: str) -> list[str]:
    """Run folders of this SCHEDCP_HOME whose domain's metadata names ``job``."""
    rr = run_root()
    return [d.name for d in sorted(rr.iterdir()) if d.is_dir() and _run_dir_job(d) == job] if rr.is_dir() else []


def virsh_names() -> list[str]:
    r = subprocess.run(["virsh", "-c", prereqs.LIBVIRT_URI, "list", "--name"], capture_output=True, text=True)
    return [n for n in r.stdout.split() if n.startswith(domain_prefix())]


def serve_params(job: str, jobs: Path) -> StdioServerParameters:
    env = dict(os.environ, SCHEDCP_JOBS=str(jobs), PYTHONPATH=str(REPO))
    env.pop("ANTHROPIC_API_KEY", None)
    return StdioServerParameters(command=sys.executable, cwd=str(REPO), env=env,
                                 args=["-m", "harness.cli", "mcp", "serve", "--workload", "hackbench",
                                       "--transport", "stdio", "--repeat", "1", "--job-id", job,
                                       "--max-wall-s", "900"])


def wait_empty(listing, timeout: float) -> tuple[float, list[str]]:
    """Poll ``listing()`` until it is empty or ``timeout`` passes: (seconds, what is left)."""
    t0 = time.monotonic()
    left = listing()
    while left and time.monotonic() - t0 < timeout:
        time.sleep(0.2)
        left = listing()
    return time.monotonic() - t0, left


def wait_gone(job: str, timeout: float) -> tuple[float, list[str]]:
    return wait_empty(lambda: running_domains(job), timeout)


def wait_result(trial_dir: Path, timeout: float) -> dict | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if (trial_dir / "result.json").is_file():
            return json.loads((trial_dir / "result.json").read_text())
        time.sleep(0.2)
    return None


def check_trial(trial_dir: Path) -> dict:
    res = wait_result(trial_dir, 30)
    assert res is not None, f"no result.json in {trial_dir}: {sorted(p.name for p in trial_dir.iterdir())}"
    assert res["status"] == "failed" and res["failure_kind"] == "agent_error", (res["status"], res["failure_kind"],
                                                                                 res["failure"])
    assert "MCP client disconnected before finish" in res["failure"], res["failure"]
    assert not res.get("tuned_runs") and not res.get("baseline_runs")  # nobody left to measure for
    assert res["tool_calls"] == 1
    assert (trial_dir / "console.log").is_file()  # the tuned guest's console, kept
    return res


def test_sdk_client_disconnect_before_finish_ends_the_trial(tmp_path):
    """The SDK's own shutdown: stdin closed, 2 s, SIGTERM to the group, 2 s, SIGKILL."""
    job = "mcp-gone-sdk"
    out: dict = {}

    async def session():
        async with Client(serve_params(job, tmp_path / "jobs"), read_timeout_seconds=900) as c:
            r = await c.call_tool("scheduler_status", {})
            out["status"] = r.structured_content
            out["live"] = running_domains(job)
        out["closed"] = time.monotonic()

    asyncio.run(asyncio.wait_for(session(), 1200))
    assert out["status"]["state"] == "disabled"
    assert out["live"], "the trial's tuned VM should run while the client is connected"
    took, left = wait_gone(job, GONE_WITHIN_S)
    assert not left, f"still running {took:.1f}s after the client left: {left}"
    assert not [n for n in virsh_names() if n in " ".join(out["live"])]
    check_trial(tmp_path / "jobs" / job / "hackbench__external__a0")


CLIENT = textwrap.dedent("""
    import asyncio, json, sys, time
    from mcp import Client, StdioServerParameters
    params = StdioServerParameters(**json.loads(sys.argv[1]))
    async def main():
        async with Client(params, read_timeout_seconds=900) as c:
            await c.call_tool("scheduler_status", {})
            print("called", flush=True)
            await asyncio.sleep(3600)
    asyncio.run(main())
""")


def test_client_killed_before_finish_ends_the_trial(tmp_path):
    """The client process dies (SIGKILL): the server, in its own session, sees only EOF."""
    job = "mcp-gone-killed"
    p = serve_params(job, tmp_path / "jobs")
    spec = json.dumps({"command": p.command, "args": p.args, "env": p.env, "cwd": str(p.cwd)})
    client = subprocess.Popen([sys.executable, "-c", CLIENT, spec], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert client.stdout.readline().strip() == "called"
        live = running_domains(job)
        assert live
        client.send_signal(signal.SIGKILL)
        client.wait(10)
        took, left = wait_gone(job, GONE_WITHIN_S)
        assert not left, f"still running {took:.1f}s after the client died: {left}"
        check_trial(tmp_path / "jobs" / job / "hackbench__external__a0")
    finally:
        if client.poll() is None:
            client.kill()


@pytest.mark.fault
def test_server_killed_with_sigkill_leaves_no_vm(tmp_path):
    """`schedcp mcp serve` itself killed with SIGKILL mid-trial: nothing of it can run any
    more, and its watchdog destroys the trial's VMs."""
    job = "mcp-gone-sigkill"
    p = serve_params(job, tmp_path / "jobs")
    out: dict = {}

    async def session():
        async with Client(p, read_timeout_seconds=900) as c:
            await c.call_tool("scheduler_status", {})
            out["live"] = running_domains(job)
            pid = next(int(x) for x in os.listdir("/proc") if x.isdigit() and _is_server(int(x), job))
            os.kill(pid, signal.SIGKILL)
            out["killed"] = time.monotonic()

    try:
        asyncio.run(asyncio.wait_for(session(), 1200))
    except Exception:  # noqa: BLE001  the session breaks with the server: expected
        pass
    assert out.get("live"), out
    took, left = wait_gone(job, GONE_WITHIN_S)
    assert not left, f"still running {took:.1f}s after the server was killed: {left}"
    # the watchdog also removes their run folders (it holds each one's lock while it does)
    took, dirs = wait_empty(lambda: run_dirs(job), GONE_WITHIN_S)
    assert not dirs, f"run folders left {took:.1f}s after the server's VMs were gone: {dirs}"
    # the trial folder has no result.json: `schedcp jobs resume` would run it again
    assert not (tmp_path / "jobs" / job / "hackbench__external__a0" / "result.json").exists()


def _is_server(pid: int, job: str) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"serve" in cmd and job.encode() in cmd and b"-c" not in cmd
