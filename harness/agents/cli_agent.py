"""`cli:<name>`: a coding-agent CLI (Claude Code, Codex...) as the agent of a trial.

The CLI runs on the host, in an empty temporary folder that is also its HOME and config
folder, with a minimal environment (PATH, the API key variables its entry passes, the
base URL), with its own shell and file tools disabled, and with exactly one MCP server:
the trial's (``HttpServer(build_server(TrialTools(...)))``, streamable HTTP on
127.0.0.1). So everything it does happens in the guest, through the same logged tools as
every other agent. Its entry in ``harness/cli_agents.yaml`` gives the command line.

Recorded: every stdout line of the CLI (its stream-json transcript) as a ``cli_event``
in the trajectory (API keys scrubbed), its stderr tail, every tool call (by TrialTools),
and whether any file appeared in its folder on the host (``host_files``, which should
stay empty). Steps and tokens come from the transcript where the CLI reports them (for
Claude Code: one step per distinct assistant message, tokens from its usage, input
counting cache reads and writes); the budget is checked as they arrive, and a CLI that
exceeds it, or the wall time, is stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

import yaml

from ..limits import LimitExceeded
from ..mcp_server import HttpServer, build_server
from ..tools import MCP_TOOLS, TrialTools
from .base import Agent, AgentContext, AgentInfraError
from .loop import SYSTEM

SPECS_FILE = Path(__file__).resolve().parents[1] / "cli_agents.yaml"
REPO = Path(__file__).resolve().parents[2]


def cli_prompt(instruction: str) -> str:
    return (instruction + "\n\nYou act only through the tools of the MCP server `schedcp`; they run in the VM. "
            "You have no shell and no files on the machine you run on. Call finish when the best configuration "
            "is in place.")


def load_specs(path: Path | None = None) -> dict[str, dict]:
    return yaml.safe_load((path or SPECS_FILE).read_text()) or {}


# `make test-tools` links a pinned Node.js 22 here (Debian 12's is 18); CLI agents run
# with it first on PATH, so `#!/usr/bin/env node` scripts get that one
NODE_BIN_DIR = REPO / ".cli-agents" / "bin"


def node_path(path: str | None = None) -> str:
    """PATH for a Node.js CLI: the pinned node first, where it is installed."""
    path = path if path is not None else os.environ.get("PATH", "/usr/bin:/bin")
    return f"{NODE_BIN_DIR}:{path}" if (NODE_BIN_DIR / "node").exists() else path


def find_bin(name: str) -> str | None:
    local = REPO / ".cli-agents" / "node_modules" / ".bin" / name
    if local.is_file():
        return str(local)
    return shutil.which(name)


def build_command(spec: dict, values: dict[str, str]) -> list[str]:
    """The CLI's argv: placeholders filled; an ``optional`` option whose value is empty
    is dropped with its value."""
    out: list[str] = []
    items = list(spec["command"])
    optional = set(spec.get("optional", []))
    i = 0
    while i < len(items):
        it = str(items[i])
        if it in optional and i + 1 < len(items) and not str(items[i + 1]).format(**values):
            i += 2
            continue
        out.append(it.format(**values))
        i += 1
    return out


class CliAgent(Agent):
    backend = "cli"

    def __init__(self, cli: str, base_url: str | None = None, bin: str | None = None, grace_s: float = 30.0,
                 specs_file: Path | None = None):
        specs = load_specs(specs_file)
        if cli not in specs:
            raise ValueError(f"no CLI agent {cli!r} in {specs_file or SPECS_FILE}: known: {', '.join(specs)}")
        self.cli, self.spec = cli, specs[cli]
        self.name = f"cli:{cli}"
        self.base_url, self.grace_s = base_url or None, grace_s
        self.bin = bin or find_bin(self.spec.get("bin", cli))

    # -- pieces, separately testable ---------------------------------------------------
    def tool_names(self, slo_hint: bool) -> list[str]:
        names = [n for n in MCP_TOOLS if slo_hint is False or n != "declare_goal"]
        return [self.spec.get("tool_prefix", "") + n for n in names]

    def env(self, home: Path) -> dict[str, str]:
        env = {"PATH": node_path(), "HOME": str(home), "LANG": "C.UTF-8",
               "CLAUDE_CONFIG_DIR": str(home / ".config"), "XDG_CONFIG_HOME": str(home / ".config"),
               "TMPDIR": str(home / ".tmp")}
        for k in self.spec.get("env_pass", []):
            if os.environ.get(k):
                env[k] = os.environ[k]
        for k, v in (self.spec.get("env") or {}).items():
            env[k] = str(v)
        if self.base_url and self.spec.get("base_url_env"):
            env[self.spec["base_url_env"]] = self.base_url
        return env

    def command(self, ctx: AgentContext, mcp_url: str, cfg_file: Path) -> list[str]:
        mcp_cfg = json.dumps({"mcpServers": {"schedcp": {"type": "http", "url": mcp_url}}})
        cfg_file.write_text(mcp_cfg)
        values = {"bin": self.bin or self.spec.get("bin", self.cli), "prompt": cli_prompt(ctx.instruction),
                  "system": SYSTEM, "model": ctx.model or "", "max_turns": str(ctx.budget.budget.steps),
                  "mcp_config": mcp_cfg, "mcp_config_file": str(cfg_file), "mcp_url": mcp_url,
                  "allowed_tools": ",".join(self.tool_names(ctx.slo_hint)),
                  "disallowed_tools": ",".join(self.spec.get("disallowed_tools", []))}
        return build_command(self.spec, values)

    # -- the episode ---------------------------------------------------------------------
    def run(self, ctx: AgentContext) -> None:
        if not self.bin:
            raise AgentInfraError(f"the {self.cli} CLI ({self.spec.get('bin')}) is not installed: "
                                  f"`make cli-agents` or npm install {self.spec.get('package', '')}")
        tools = TrialTools(ctx, require_goal=not ctx.slo_hint)
        ctx.notes["tools"] = tools
        secrets = [os.environ[k] for k in self.spec.get("env_pass", []) if os.environ.get(k)]
        server = HttpServer(build_server(tools)).start()
        work = Path(tempfile.mkdtemp(prefix="schedcp-cli-work-"))
        home = Path(tempfile.mkdtemp(prefix="schedcp-cli-home-"))
        (home / ".config").mkdir()
        (home / ".tmp").mkdir()
        try:
            cmd = self.command(ctx, server.url, home / "mcp.json")
            prompt = cli_prompt(ctx.instruction)
            ctx.trajectory.log("interface", kind="cli", cli=self.cli, url=server.url, cwd=str(work),
                               argv=["<prompt>" if x == prompt else _scrub(x, secrets) for x in cmd],
                               tools=self.tool_names(ctx.slo_hint))
            self._episode(ctx, tools, cmd, work, home, secrets)
        finally:
            server.stop()
            created = sorted(str(p.relative_to(work)) for p in work.rglob("*"))
            ctx.trajectory.log("host_files", cwd=str(work), created=created)
            ctx.notes["host_files"] = created
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(home, ignore_errors=True)

    def _episode(self, ctx, tools: TrialTools, cmd: list[str], work: Path, home: Path, secrets: list[str]) -> None:
        proc = subprocess.Popen(cmd, cwd=work, env=self.env(home), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        stop = {"why": None}

        def kill(why: str) -> None:
            if proc.poll() is None:
                stop["why"] = stop["why"] or why
                os.killpg(proc.pid, signal.SIGTERM)
                threading.Timer(10, lambda: proc.poll() is None and os.killpg(proc.pid, signal.SIGKILL)).start()

        def watch() -> None:  # wall budget; after finish, a grace period to end the session
            if not tools.finished.wait(timeout=max(1.0, ctx.budget.remaining_s)):
                kill("wall_s")
            elif proc.poll() is None:
                ended = threading.Event()
                threading.Thread(target=lambda: (proc.wait(), ended.set()), daemon=True).start()
                if not ended.wait(self.grace_s):
                    kill("finished")

        err_lines: list[str] = []
        threading.Thread(target=lambda: err_lines.extend(proc.stderr), daemon=True).start()
        threading.Thread(target=watch, daemon=True).start()
        seen: dict[str, tuple[int, int]] = {}
        result: dict = {}
        limit: LimitExceeded | None = None
        for line in proc.stdout:
            line = _scrub(line.rstrip("\n"), secrets)
            if not line.strip():
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                ctx.trajectory.log("cli_output", text=line[:4000])
                continue
            ctx.trajectory.log("cli_event", event=ev)
            if self.spec.get("transcript") == "claude-stream-json" and isinstance(ev, dict):
                if ev.get("type") == "assistant":
                    msg = ev.get("message") or {}
                    u = msg.get("usage") or {}
                    tin = sum(int(u.get(k) or 0) for k in ("input_tokens", "cache_creation_input_tokens",
                                                           "cache_read_input_tokens"))
                    mid = msg.get("id") or f"anon-{len(seen)}"
                    if mid not in seen:  # one step per model reply (a reply may come in several events)
                        seen[mid] = (tin, int(u.get("output_tokens") or 0))
                        ctx.budget.add_call(*seen[mid])
                        try:
                            ctx.budget.check()
                        except LimitExceeded as e:
                            if limit is None and e.kind != "steps":  # steps: the CLI's --max-turns ends it
                                limit = e
                                ctx.trajectory.log("limit", kind=e.kind, message=str(e))
                                kill(e.kind)
                elif ev.get("type") == "result":
                    result = ev
        proc.wait()
        u = result.get("usage") if isinstance(result.get("usage"), dict) else None
        if u:  # the CLI's session totals: output tokens arrive only there (its events carry the first usage)
            tin = sum(int(u.get(k) or 0) for k in ("input_tokens", "cache_creation_input_tokens",
                                                   "cache_read_input_tokens"))
            din = tin - sum(x[0] for x in seen.values())
            dout = int(u.get("output_tokens") or 0) - sum(x[1] for x in seen.values())
            ctx.budget.add_tokens(max(0, din), max(0, dout))
        stderr = _scrub("".join(err_lines), secrets)
        ctx.trajectory.log("cli_exit", returncode=proc.returncode, stopped=stop["why"], stderr_tail=stderr[-4000:],
                           result={k: result.get(k) for k in ("subtype", "is_error", "num_turns", "total_cost_usd",
                                                               "usage") if k in result})
        if limit is not None:
            raise limit
        if stop["why"] == "wall_s":
            b = ctx.budget.budget
            raise LimitExceeded("wall_s", b.wall_s - ctx.budget.remaining_s, b.wall_s)
        if result.get("subtype") == "error_max_turns":
            raise LimitExceeded("steps", result.get("num_turns") or ctx.budget.usage.steps, ctx.budget.budget.steps)
        if tools.finished.is_set():
            return
        if proc.returncode != 0 or result.get("is_error"):
            text = str(result.get("result") or stderr[-500:] or f"exit {proc.returncode}")
            if "API Error" in text or "api_error" in text or "Connection error" in text:
                raise AgentInfraError(f"{self.cli}: model API error: {text[:300]}")
            raise RuntimeError(f"{self.cli} exited with {proc.returncode}: {text[:300]}")


def _scrub(text: str, secrets: list[str]) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "<redacted>")
    return text
