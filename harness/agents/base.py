"""The agent interface: ``run(ctx)`` tunes the guest in ``ctx.sandbox`` within the budget.

Agents fill the context as they go (trajectory events, usage), so a timeout or crash
still leaves data behind. The agent never reports its own score: the trial measures.
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

from sandbox.base import Sandbox

from ..limits import BudgetTracker
from ..workload import Workload


class AgentInfraError(Exception):
    """The agent could not reach its model API (after retries): the trial is an infra_error."""


class Trajectory:
    """Append-only JSONL log of everything the agent and harness did in a trial."""

    def __init__(self, path: Path, on_log: Callable[[dict], None] | None = None):
        self.path = path
        self.t0 = time.monotonic()
        self.on_log = on_log

    def log(self, type_: str, **data) -> None:
        rec = {"t": round(time.monotonic() - self.t0, 4), "type": type_, **data}
        with open(self.path, "a") as f:
            f.write(json.dumps(rec, default=str) + "\n")
        if self.on_log:
            self.on_log(rec)


def host_copy_path(files_dir: Path, guest_path: str) -> Path:
    """Where the host keeps its copy of a file the agent wrote at ``guest_path``: always
    inside ``files_dir``. A path with ``..`` (or a NUL) is refused: agent-chosen names
    must never reach outside the trial folder on the host."""
    parts = PurePosixPath(guest_path).parts
    if not guest_path or "\0" in guest_path or ".." in parts:
        raise ValueError(f"refused path {guest_path!r}: use an absolute guest path without '..'")
    local = (files_dir / "/".join(p for p in parts if p != "/")).resolve()
    root = files_dir.resolve()
    if local != root and root not in local.parents:
        raise ValueError(f"refused path {guest_path!r}: outside the trial's files folder")
    return local


@dataclass
class AgentContext:
    sandbox: Sandbox
    workload: Workload
    instruction: str
    budget: BudgetTracker
    trajectory: Trajectory
    files_dir: Path  # host copy of every file the agent writes in the guest
    model: str | None = None
    trial_run: Callable[[], dict] = lambda: {}  # a harness-run trial of the workload the agent may see
    # the same run as the program's own output (exit code, elapsed s, output), no named
    # metrics: what run_workload returns to an agent that was not told the goal
    trial_run_output: Callable[[], dict] = lambda: {}
    slo_hint: bool = True  # False: the agent must infer and declare the goal (RQ2)
    interface: str = "bash"  # bash | mcp
    trial_dir: Path | None = None
    files_written: list[str] = field(default_factory=list)
    notes: dict = field(default_factory=dict)

    def run(self, cmd: str, timeout: float = 120.0) -> dict:
        """Run a command in the guest, logged to the trajectory."""
        r = self.sandbox.run(cmd, timeout=min(timeout, max(1.0, self.budget.remaining_s)), max_output=64 << 10)
        self.trajectory.log("command", cmd=cmd, **r.to_dict())
        return r.to_dict()

    def write_file(self, path: str, content: str, log: bool = True) -> None:
        local = host_copy_path(self.files_dir, path)  # refuses before anything is written
        parent = path.rsplit("/", 1)[0]
        if parent:
            self.sandbox.run(f"mkdir -p {shlex.quote(parent)}", timeout=30)
        self.sandbox.put_file(path, content)
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(content)
        self.files_written.append(path)
        if log:
            self.trajectory.log("write_file", path=path, bytes=len(content))


class Agent:
    name = "base"

    def run(self, ctx: AgentContext) -> None:
        raise NotImplementedError
