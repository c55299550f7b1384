"""The agent interface: ``run(ctx)`` tunes the guest in ``ctx.sandbox`` within the budget.

Agents fill the context as they go (trajectory events, usage), so a timeout or crash
still leaves data behind. The agent never reports its own score: the trial measures.
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
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
        parent = path.rsplit("/", 1)[0]
        if parent:
            self.sandbox.run(f"mkdir -p {shlex.quote(parent)}", timeout=30)
        self.sandbox.put_file(path, content)
        local = self.files_dir / path.lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(content)
        self.files_written.append(path)
        if log:
            self.trajectory.log("write_file", path=path, bytes=len(content))


class Agent:
    name = "base"

    def run(self, ctx: AgentContext) -> None:
        raise NotImplementedError
