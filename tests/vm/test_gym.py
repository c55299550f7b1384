"""The Gym environment and the classic tuners on real VMs (hackbench smoke: the fastest
workload; few steps). Under TCG each workload run takes 4-40 s depending on host load."""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import schedcp
from harness import tuning
from harness.models import Budget, TrialConfig
from harness.trial import run_trial

REPO = Path(__file__).resolve().parents[2]


def test_check_env_on_a_real_vm(backend):
    env = schedcp.env(workload="hackbench", size="smoke", action_space="dict", max_steps=3, warmup_runs=0,
                      backend=backend)
    calls = {"reset": [], "step": []}
    reset, step = env.reset, env.step

    def timed_reset(*, seed=None, options=None):  # check_env inspects the signature
        t = time.monotonic()
        out = reset(seed=seed, options=options)
        calls["reset"].append(time.monotonic() - t)
        return out

    def timed_step(a):
        t = time.monotonic()
        out = step(a)
        calls["step"].append(time.monotonic() - t)
        return out

    env.reset, env.step = timed_reset, timed_step
    t = time.monotonic()
    try:
        check_env(env, skip_render_check=True)
        obs, info = env.reset(seed=1)
        assert info["features"] == schedcp.FEATURES and info["baseline"] > 0
        assert obs[0] > 50 and obs[2] > 0 and obs[3] > 0  # busy CPUs, context switches, run-queue wait
        # wakeup latency percentiles from the in-kernel histogram, over thousands of wakeups
        tel = info["baseline_runs"][-1]["telemetry"]
        assert "wakeup_lat_error" not in tel and tel["wakeup_lat_samples"] > 1000, tel
        assert 0 < obs[4] <= obs[5] <= tel["wakeup_lat_max_us"]
        assert (obs[4], obs[5]) == (tel["wakeup_lat_p50_us"], tel["wakeup_lat_p99_us"])
        assert obs[7] == pytest.approx(1.0)
        # a parametric action really lands in the guest
        a = {"choice": 0, "knobs": np.zeros(len(tuning.KNOBS), np.float32)}
        obs, r, term, trunc, info = env.step(a)
        assert not term and info["apply_errors"] == [] and info["ratio"] > 0, info
        now = tuning.read_defaults(env.sb)
        assert now[f"{tuning.DEBUGFS}/base_slice_ns"] == "100000" and now["features:RUN_TO_PARITY"] == "0"
        # and a scheduler choice
        a = {"choice": tuning.CHOICES.index("sched:scx_simple"), "knobs": tuning.knob_units(env.defaults)}
        obs, r, term, trunc, info = env.step(a)
        assert info["apply_errors"] == [] and not term
        assert env.sb.run("cat /sys/kernel/sched_ext/root/ops").stdout.strip() == "simple"
        after = tuning.read_defaults(env.sb)  # knobs back at (the encoding of) the defaults
        assert all(abs(float(after[k]) - float(v)) <= 0.01 * float(v) for k, v in env.defaults.items()), after
    finally:
        env.close()
    print(f"\ncheck_env + 1 reset + 2 steps: {time.monotonic() - t:.1f}s; resets {len(calls['reset'])} "
          f"(mean {np.mean(calls['reset']):.1f}s), steps {len(calls['step'])} (mean {np.mean(calls['step']):.1f}s)")


def test_latency_histogram_leaves_the_guest_as_it_was(sb):
    """The monitor's scheduling-latency histogram under load, on a guest whose trace clock
    is not the default: percentiles come back, and the clock, the synthetic event and the
    triggers are as before."""
    from harness import telemetry

    tr = "/sys/kernel/tracing"
    assert sb.run(f"echo local > {tr}/trace_clock").success
    sb.run("setsid -f hackbench -g 2 -l 100000 >/dev/null 2>&1")  # outlasts the monitor's start
    try:
        out = telemetry.monitor(sb, 2)
    finally:
        sb.run("pkill hackbench")
    assert "wakeup_lat_error" not in out and out["wakeup_lat_samples"] > 100, out
    assert 0 < out["wakeup_lat_p50_us"] <= out["wakeup_lat_p90_us"] <= out["wakeup_lat_p99_us"] \
        <= out["wakeup_lat_max_us"]
    after = sb.run(f"cat {tr}/trace_clock {tr}/synthetic_events {tr}/events/sched/sched_switch/trigger "
                   f"{tr}/events/sched/sched_waking/trigger").stdout
    assert "[local]" in after and "schedcp_wakeup_lat" not in after and "hist:" not in after, after


@pytest.mark.parametrize("agent", ["optuna", "bandit"])
def test_tuner_trial_completes(backend, tmp_path, agent):
    kw = {} if agent == "bandit" else {"runs_per_candidate": 1}
    cfg = TrialConfig(trial_id=f"hackbench__{agent}__a0", workload="hackbench", agent=agent, repeat=1, warmup=0,
                      budget=Budget(steps=2, wall_s=900))
    res = run_trial(cfg, tmp_path / "t", backend, agent_kwargs=kw)
    assert res.status == "done" and res.failure_kind in ("none", "budget_exceeded"), res.failure
    assert res.usage.steps == 2 and res.usage.input_tokens == 0 and res.usage.host_cpu_s is not None
    assert res.improvement["ratio"] > 0 and len(res.tuned_runs) == 1
    ev = [json.loads(x) for x in (tmp_path / "t" / "trajectory.jsonl").read_text().splitlines()]
    cands = [e for e in ev if e["type"] == "candidate"]
    assert len(cands) == 2 and all(c["score"] is not None for c in cands[:1])
    summary = next(e for e in ev if e["type"] == "tuner_summary")
    if summary["best"]["scheduler"]:
        assert res.tuned_config["sched_ext"]["state"] == "enabled"
    print(f"\n{agent}: {res.phases_s}, x{res.improvement['ratio']:.3f}, host CPU {res.usage.host_cpu_s}s, "
          f"kept {summary['best_label']}")


def test_random_policy_example_runs_two_steps():
    t = time.monotonic()
    p = subprocess.run([sys.executable, str(REPO / "examples" / "rl_random_policy.py"), "--steps", "2",
                        "--warmup-runs", "0", "--json"], capture_output=True, text=True, timeout=1200, cwd=REPO)
    assert p.returncode == 0, p.stderr[-3000:]
    steps = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
    assert [s["step"] for s in steps] == [1, 2] and all(isinstance(s["reward"], float) for s in steps)
    assert "return" in p.stdout
    print(f"\nexample, 1 reset + 2 steps: {time.monotonic() - t:.1f}s")
