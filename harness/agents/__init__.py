"""Agents by name (the CLI's --agent). Imported lazily so that an unused agent's SDK is
never imported."""

from __future__ import annotations

import importlib

from .base import Agent, AgentContext, Trajectory

REGISTRY = {
    "linux-default": ("harness.agents.linux_default", "LinuxDefault"),
    "scx-search": ("harness.agents.scx_search", "ScxSearch"),
    "claude": ("harness.agents.claude", "ClaudeAgent"),
    "replay": ("harness.agents.replay", "ReplayAgent"),
    "external": ("harness.agents.external", "ExternalAgent"),
    "openai": ("harness.agents.openai_agent", "OpenAIAgent"),
    # classic autotuners over the Gym environment's action spaces (harness/tuning.py)
    "optuna": ("harness.agents.tuners", "OptunaTuner"),
    "bandit": ("harness.agents.tuners", "BanditTuner"),
    "random": ("harness.agents.tuners", "RandomTuner"),
}
CLI_PREFIX = "cli:"  # cli:<name>: a coding-agent CLI from harness/cli_agents.yaml

# One line per agent for `schedcp agents` (kept here, not read from the classes, so that
# listing the agents imports no agent's SDK)
DESCRIPTIONS = {
    "linux-default": "changes nothing (the default kernel: EEVDF, default sysctls): the control, whose ratio should be 1.00x",
    "scx-search": "non-LLM tuner: tries the prebuilt sched_ext schedulers and sysctl/debugfs presets, keeps the best",
    "claude": "LLM agent on the Anthropic Messages API with tools (--model, default claude-sonnet-4-6)",
    "replay": "replays the guest actions of a recorded trajectory",
    "external": "any MCP client drives the trial (schedcp mcp serve, stdio or HTTP)",
    "openai": "LLM agent on an OpenAI-compatible Chat Completions API (--model, --base-url; e.g. the local model)",
    "optuna": "classic autotuner: TPE over the EEVDF knobs, one trial per budget step",
    "bandit": "classic autotuner: UCB1 over the schedulers and sysctl presets, one pull per budget step",
    "random": "classic autotuner: uniform random configurations, one per budget step",
}


def describe(name: str) -> str:
    """One line about agent ``name`` (``cli:NAME`` included)."""
    if name.startswith(CLI_PREFIX):
        from .cli_agent import find_bin, load_specs

        spec = load_specs().get(name[len(CLI_PREFIX):])
        if spec is None:
            return ""
        desc = spec.get("description") or (f"coding-agent CLI `{spec.get('bin', name[len(CLI_PREFIX):])}`"
                                           + (f" ({spec['package']})" if spec.get("package") else "")
                                           + " working only through the trial's MCP tools")
        if spec.get("bin") and not find_bin(spec["bin"]):
            desc += " [not installed" + ("; make cli-agents" if spec.get("package") else "") + "]"
        return desc
    if name in DESCRIPTIONS:
        return DESCRIPTIONS[name]
    if name in REGISTRY:  # an agent added without a line above: its class docstring's first line
        mod, cls = REGISTRY[name]
        doc = getattr(importlib.import_module(mod), cls).__doc__ or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""
    return ""


def list_agents() -> list[tuple[str, str]]:
    """Every agent name ``--agent`` takes, with its one-line description: the registry's,
    then one ``cli:NAME`` per entry of harness/cli_agents.yaml."""
    from .cli_agent import load_specs

    names = list(REGISTRY) + [CLI_PREFIX + n for n in load_specs()]
    return [(n, describe(n)) for n in names]


def known_agent(name: str) -> bool:
    if name.startswith(CLI_PREFIX):
        from .cli_agent import load_specs

        return name[len(CLI_PREFIX):] in load_specs()
    return name in REGISTRY


def make_agent(name: str, **kwargs) -> Agent:
    if name.startswith(CLI_PREFIX):
        from .cli_agent import CliAgent

        return CliAgent(name[len(CLI_PREFIX):], **kwargs)
    if name not in REGISTRY:
        raise ValueError(f"no agent {name!r}: known agents: {', '.join(REGISTRY)}")
    mod, cls = REGISTRY[name]
    return getattr(importlib.import_module(mod), cls)(**kwargs)


__all__ = ["Agent", "AgentContext", "Trajectory", "REGISTRY", "DESCRIPTIONS", "describe", "known_agent",
           "list_agents", "make_agent"]
