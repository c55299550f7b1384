#!/usr/bin/env python3
"""A starting point for RL research on schedcp-bench: a random policy in the Gym
environment. Each episode is a fresh VM; each step applies a configuration in the guest
and runs the workload once (seconds to a minute under TCG), so keep runs short.

    python examples/rl_random_policy.py --workload hackbench --action-space dict --steps 4

Replace ``policy`` with your agent. ``info["label"]`` names the configuration a step
applied; ``info["metrics"]`` and ``info["telemetry"]`` are the raw measurements.
"""

from __future__ import annotations

import argparse
import json
import time

import schedcp
from harness import fmt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", default="hackbench")
    ap.add_argument("--size", default="smoke", choices=["smoke", "full"])
    ap.add_argument("--action-space", default="discrete", choices=list(schedcp.ACTION_SPACES))
    ap.add_argument("--episodes", type=int, default=1)
    ap.add_argument("--steps", type=int, default=4, help="steps per episode (the episode's step budget)")
    ap.add_argument("--warmup-runs", type=int, default=1, help="dropped runs at each reset (0 for a quick smoke)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="one JSON line per step")
    a = ap.parse_args(argv)

    env = schedcp.env(workload=a.workload, size=a.size, action_space=a.action_space, max_steps=a.steps,
                      warmup_runs=a.warmup_runs)
    env.action_space.seed(a.seed)

    def policy(obs):  # your agent goes here
        return env.action_space.sample()

    try:
        for ep in range(a.episodes):
            t = time.monotonic()
            obs, info = env.reset(seed=a.seed + ep)
            print(f"episode {ep}: baseline {info['metric']} = {fmt.metric(info['baseline'])} "
                  f"({info['direction']} is better); reset {fmt.seconds(time.monotonic() - t)} s; obs "
                  + ", ".join(f"{n}={fmt.metric(float(v))}" for n, v in zip(info["features"], obs)), flush=True)
            total, done = 0.0, False
            while not done:
                obs, reward, terminated, truncated, info = env.step(policy(obs))
                total += reward
                done = terminated or truncated
                if a.json:
                    print(json.dumps({"episode": ep, "step": info["step"], "label": info["label"], "reward": reward,
                                      "ratio": info.get("ratio"), "error": info.get("error"),
                                      "apply_errors": info.get("apply_errors"), "step_s": info["step_s"]}), flush=True)
                else:
                    print(f"  step {info['step']}: {info['label']}: reward {fmt.signed(reward)} "
                          f"(x{fmt.ratio(info.get('ratio'))}, SLO {'met' if info.get('slo_met') else 'not met'}) "
                          f"{info.get('error') or ''}{fmt.seconds(info['step_s'])} s", flush=True)
            print(f"episode {ep}: return {fmt.signed(total)}")
    finally:
        env.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
