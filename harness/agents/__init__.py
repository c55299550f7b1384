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


__all__ = ["Agent", "AgentContext", "Trajectory", "REGISTRY", "known_agent", "make_agent"]
