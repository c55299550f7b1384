"""schedcp-bench as a library: ``schedcp.env(...)`` gives a Gymnasium environment whose
episodes run in fresh throw-away VMs (see :mod:`harness.gym_env`).

    import schedcp
    env = schedcp.env(workload="hackbench", size="smoke", action_space="discrete")
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    env.close()

The id ``schedcp/SchedCP-v0`` is registered too: ``gymnasium.make("schedcp/SchedCP-v0",
workload=...)`` gives the same environment inside gymnasium's usual wrappers.
"""

from __future__ import annotations

import gymnasium as gym

from harness.gym_env import ACTION_SPACES, ENTRY_POINT, ENV_ID, FEATURES, SchedCPEnv

if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point=ENTRY_POINT, nondeterministic=True)


def env(workload: str = "hackbench", size: str = "smoke", action_space: str = "discrete", **kwargs) -> SchedCPEnv:
    """A :class:`harness.gym_env.SchedCPEnv`. ``action_space``: discrete | parametric | dict.
    Other keywords: ``max_steps`` (10), ``warmup_runs`` (1), ``baseline_runs`` (1),
    ``slo_bonus`` (0.1), ``recipe`` (the image recipe; default image), ``backend`` (a
    ready backend, e.g. shared by several environments run one after another)."""
    return SchedCPEnv(workload=workload, size=size, action_space=action_space, **kwargs)


__all__ = ["env", "SchedCPEnv", "ACTION_SPACES", "FEATURES", "ENV_ID"]
