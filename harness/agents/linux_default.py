"""`linux-default`: changes nothing. The EEVDF + default-sysctl baseline; a sanity check
that the measured improvement of an untouched guest is 1.00x within its interval."""

from .base import Agent, AgentContext


class LinuxDefault(Agent):
    name = "linux-default"

    def run(self, ctx: AgentContext) -> None:
        ctx.trajectory.log("message", role="agent", text="linux-default: leaving the kernel's defaults in place")
