"""`replay`: replays the guest actions of a recorded trajectory (its ``command`` and
``write_file`` events, in order), for tests and for re-measuring a past run. The files a
recorded agent wrote are taken from that trial's ``files/`` folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .base import Agent, AgentContext, host_copy_path


class ReplayAgent(Agent):
    name = "replay"

    def __init__(self, trajectory: str | Path | None = None):
        src = trajectory or os.environ.get("SCHEDCP_REPLAY")
        if not src:
            raise ValueError("replay needs a trajectory: pass trajectory= or set SCHEDCP_REPLAY")
        self.path = Path(src)

    def run(self, ctx: AgentContext) -> None:
        files = self.path.parent / "files"
        for line in self.path.read_text().splitlines():
            ev = json.loads(line)
            if ev["type"] == "command":
                ctx.budget.check()
                ctx.budget.add_step()
                ctx.run(ev["cmd"])
            elif ev["type"] == "write_file":
                ctx.write_file(ev["path"], host_copy_path(files, ev["path"]).read_text())
