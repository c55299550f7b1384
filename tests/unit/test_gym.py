"""The Gym environment's action spaces, reward and the classic tuners, without a VM
(the tuners run against a stub guest whose metric depends on the configuration)."""

import math
from pathlib import Path

import numpy as np
import pytest

import schedcp
from harness import gym_env, tuning
from harness.agents import make_agent
from harness.agents.base import AgentContext, Trajectory
from harness.agents.tuners import BanditTuner
from harness.limits import BudgetTracker
from harness.models import Budget
from harness.workload import load_workload


# -- action spaces ------------------------------------------------------------------------

def test_discrete_space_lists_default_schedulers_and_presets():
    sp = gym_env.make_action_space("discrete")
    assert sp.n == len(tuning.CHOICES) and tuning.CHOICES[0] == "default"
    assert gym_env.decode_action("discrete", 0) == tuning.Config()
    labels = [gym_env.decode_action("discrete", i).label for i in range(sp.n)]
    assert labels == tuning.CHOICES
    assert gym_env.decode_action("discrete", tuning.CHOICES.index("sched:scx_simple")).scheduler == "scx_simple"
    cfg = gym_env.decode_action("discrete", tuning.CHOICES.index("sysctl:latency"))
    assert cfg.preset == "latency" and cfg.settings()["kernel.sched_autogroup_enabled"] == "0"
    for i in range(sp.n):
        assert gym_env.encode_config("discrete", gym_env.decode_action("discrete", i)) == i


def test_parametric_bounds_and_round_trip():
    sp = gym_env.make_action_space("parametric")
    assert sp.shape == (len(tuning.KNOBS),) and float(sp.low.min()) == 0.0 and float(sp.high.max()) == 1.0
    lo = gym_env.decode_action("parametric", np.zeros(sp.shape, np.float32)).knobs
    hi = gym_env.decode_action("parametric", np.ones(sp.shape, np.float32)).knobs
    for k in tuning.KNOBS:
        if k.scale == "flag":
            assert (lo[k.key], hi[k.key]) == ("0", "1")
        else:
            assert (int(lo[k.key]), int(hi[k.key])) == (k.low, k.high)
    slice_ = f"{tuning.DEBUGFS}/base_slice_ns"
    mid = gym_env.decode_action("parametric", np.full(sp.shape, 0.5, np.float32)).knobs
    assert int(mid[slice_]) == round(math.sqrt(100_000 * 20_000_000))  # log scale: geometric middle
    # out-of-range actions are clipped to the bounds, never written raw
    assert gym_env.decode_action("parametric", np.full(sp.shape, 7.0)).knobs == hi
    for _ in range(20):  # encode is the inverse of decode up to the integer rounding of values
        cfg = gym_env.decode_action("parametric", sp.sample())
        assert gym_env.decode_action("parametric", gym_env.encode_config("parametric", cfg)) == cfg
    with pytest.raises(ValueError):
        tuning.knob_config([0.5])


def test_defaults_encode_to_the_documented_values():
    d = {k.key: str(k.default) for k in tuning.KNOBS}
    assert tuning.knob_config(tuning.knob_units(d)) == {k: str(int(float(v))) for k, v in d.items()}


def test_dict_space_combines_choice_and_knobs_and_presets_win_their_keys():
    sp = gym_env.make_action_space("dict")
    assert set(sp.spaces) == {"choice", "knobs"}
    a = {"choice": tuning.CHOICES.index("sysctl:latency"), "knobs": np.ones(len(tuning.KNOBS), np.float32)}
    cfg = gym_env.decode_action("dict", a)
    s = cfg.settings()
    assert cfg.preset == "latency" and s["kernel.sched_autogroup_enabled"] == "0"  # preset's key
    assert s[f"{tuning.DEBUGFS}/base_slice_ns"] == "1000000"  # preset's key
    assert s[f"{tuning.DEBUGFS}/migration_cost_ns"] == "50000000"  # knob, not in the preset
    a = {"choice": tuning.CHOICES.index("sched:scx_qmap"), "knobs": np.zeros(len(tuning.KNOBS), np.float32)}
    cfg = gym_env.decode_action("dict", a)
    assert cfg.scheduler == "scx_qmap" and cfg.knobs["features:RUN_TO_PARITY"] == "0"
    enc = gym_env.encode_config("dict", cfg)
    assert enc["choice"] == a["choice"] and np.allclose(enc["knobs"], a["knobs"], atol=1e-6)
    with pytest.raises(ValueError):
        gym_env.make_action_space("continuous")


def test_write_commands():
    assert tuning._write_cmd("features:NEXT_BUDDY", "1") == f"echo NEXT_BUDDY > {tuning.FEATURES}"
    assert tuning._write_cmd("features:NEXT_BUDDY", "0") == f"echo NO_NEXT_BUDDY > {tuning.FEATURES}"
    assert tuning._write_cmd("kernel.sched_autogroup_enabled", "0") == "sysctl -q -w kernel.sched_autogroup_enabled=0"
    assert tuning._write_cmd(f"{tuning.DEBUGFS}/nr_migrate", "8") == f"echo 8 > {tuning.DEBUGFS}/nr_migrate"


# -- reward -------------------------------------------------------------------------------

def test_reward_is_oriented_improvement_with_slo_bonus():
    # lower is better, SLO: at most 0.9 x baseline
    r, ratio, met = gym_env.reward(8.0, 10.0, "lower", None, 0.9, slo_bonus=0.1)
    assert ratio == pytest.approx(1.25) and met and r == pytest.approx(0.35)
    r, ratio, met = gym_env.reward(10.0, 10.0, "lower", None, 0.9, slo_bonus=0.1)
    assert ratio == 1.0 and not met and r == pytest.approx(-0.1)
    r, ratio, met = gym_env.reward(20.0, 10.0, "lower", None, None, slo_bonus=0.0)
    assert ratio == 0.5 and met and r == pytest.approx(-0.5)
    # higher is better, absolute SLO
    r, ratio, met = gym_env.reward(120.0, 100.0, "higher", 110.0, None)
    assert ratio == pytest.approx(1.2) and met and r == pytest.approx(0.3)
    r, ratio, met = gym_env.reward(100.0, 100.0, "higher", 110.0, None)
    assert not met and r == pytest.approx(-0.1)
    assert gym_env.oriented_ratio(0.0, 10.0, "lower") == 0.0


# -- the environment without a guest ----------------------------------------------------------

def test_env_is_cheap_to_build_and_declares_itself_nondeterministic():
    env = schedcp.env(workload="context-switch", action_space="parametric")
    assert env.sb is None and env.spec.nondeterministic and env.spec.id == schedcp.ENV_ID
    assert env.observation_space.shape == (len(schedcp.FEATURES),)
    assert env.observation_space.contains(env._obs({"cpu_util_pct": 150.0}, 5.0, 1.0))  # clipped
    with pytest.raises(RuntimeError):
        env.step(env.action_space.sample())
    env.close()
    env.close()  # closing twice is fine
    import gymnasium as gym

    assert gym.spec(schedcp.ENV_ID).nondeterministic


# -- tuners against a stub guest ------------------------------------------------------------------

class StubGuest:
    """Stands in for the sandbox: a config's metric is a fixed function of it."""

    def __init__(self, monkeypatch, score):
        self.applied: list[tuning.Config] = []
        self.score = score
        monkeypatch.setattr(tuning, "read_defaults", lambda sb: {k.key: str(k.default) for k in tuning.KNOBS})

        def apply(sb, cfg, defaults, run=None):
            self.applied.append(cfg)
            return ["scx_qmap: cannot start"] if cfg.scheduler == "scx_qmap" else []

        monkeypatch.setattr(tuning, "apply_config", apply)

    def trial_run(self):
        return {"wall_s": self.score(self.applied[-1] if self.applied else tuning.Config())}


def ctx_for(tmp_path: Path, guest: StubGuest, steps: int) -> AgentContext:
    return AgentContext(sandbox=None, workload=load_workload("hackbench"), instruction="", files_dir=tmp_path,
                        budget=BudgetTracker(Budget(steps=steps)), trajectory=Trajectory(tmp_path / "t.jsonl"),
                        trial_run=guest.trial_run)


def _events(tmp_path):
    import json

    return [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("name", ["optuna", "bandit", "random"])
def test_tuners_spend_the_budget_log_candidates_and_keep_the_best(tmp_path, monkeypatch, name):
    def score(cfg):  # hackbench wall_s: scx_simple is best, a short base slice helps
        s = 3.0 if cfg.scheduler == "scx_simple" else 5.0
        return s * (1 + 0.1 * math.log10(int(cfg.settings().get(f"{tuning.DEBUGFS}/base_slice_ns", 1_400_000))))

    guest = StubGuest(monkeypatch, score)
    ctx = ctx_for(tmp_path, guest, steps=12)
    make_agent(name, **({} if name == "bandit" else {"runs_per_candidate": 1})).run(ctx)  # spent: a normal end
    ev = _events(tmp_path)
    assert any(e["type"] == "limit" and e["kind"] == "steps" for e in ev)
    cands = [e for e in ev if e["type"] == "candidate"]
    assert ctx.budget.usage.steps == 12 and len(cands) == 12
    assert all({"label", "config", "score", "metrics"} <= set(e) for e in cands)
    summary = next(e for e in ev if e["type"] == "tuner_summary")
    assert summary["tokens"] == 0 and summary["host_cpu_s"] >= 0 and ctx.notes["host_cpu_s"] >= 0
    final = guest.applied[-1]  # the best configuration is left in place
    assert final.to_dict() == summary["best"]
    scored = [c for c in cands if c["score"] is not None]
    if name == "bandit":
        assert final.scheduler == "scx_simple"
        assert all(c["config"]["knobs"] == {} for c in cands)  # discrete arms only
        assert not any(c["label"] == "sched:scx_qmap" and c["score"] is not None for c in cands)
    else:
        assert summary["best_score"] == min(c["score"] for c in scored)
        assert cands[0]["config"]["scheduler"] is None and cands[0]["config"]["preset"] is None
    if name == "optuna":
        assert all(c["config"]["scheduler"] is None and set(c["config"]["knobs"]) == set(tuning.KNOB_KEYS)
                   for c in cands)
        assert summary["best_score"] < cands[0]["score"]  # TPE found a shorter slice than the default


def test_ucb_pulls_every_arm_once_then_exploits():
    assert BanditTuner.ucb_pick([0, 0, 0], [1, 0, 1], 0.1) == 1
    assert BanditTuner.ucb_pick([1.0, 1.2, 0.9], [5, 5, 5], 0.1) == 1
    assert BanditTuner.ucb_pick([1.0, 1.01], [100, 1], 0.1) == 1  # rarely pulled: explore


def test_rq1_table_shows_wall_time_and_host_cpu():
    from harness.experiments import render
    from harness.models import MetricStats, TrialResult

    def res(agent, cpu):
        r = TrialResult(trial_id=f"a__{agent}__a0", workload="a", agent=agent, primary_metric="wall_s",
                        direction="lower", summary={"wall_s": MetricStats(baseline={"median": 10.0},
                                                                          tuned={"median": 8.0})},
                        improvement={"ratio": 1.25, "ci95": [1.1, 1.4], "p_value": 0.05}, slo={"tuned_met": True})
        r.usage.steps, r.usage.wall_s, r.usage.host_cpu_s = 4, 120.0, cpu
        return r

    md = render("rq1", [res("optuna", 1.5), res("claude", None)])
    assert "| agent wall s | host CPU s |" in md
    assert "| optuna | none | - | a | 10 | 8 | 1.25 |" in md and md.splitlines()[-4].endswith("| 120.0 | 1.500 |")
    assert "| 120.0 | - |" in md  # older results without host CPU time


@pytest.mark.parametrize("space", ["discrete", "parametric", "dict"])
def test_check_env_passes_with_a_stub_guest(monkeypatch, space):
    """The API contract without a VM (tests/vm/test_gym.py runs check_env on a real one)."""
    import random

    from gymnasium.utils.env_checker import check_env

    from harness import bench

    class Sandbox:
        class relay:
            guest_release = "7.3.4+deb13-cloud-amd64"

        def close(self):
            pass

    class Backend:
        def open(self, **kw):
            return Sandbox()

    monkeypatch.setattr(bench, "setup", lambda *a, **k: None)
    monkeypatch.setattr(bench, "run_once", lambda *a, **k: None)
    monkeypatch.setattr(tuning, "read_defaults", lambda sb: {})
    monkeypatch.setattr(tuning, "apply_config", lambda *a, **k: [])
    tel = {"cpu_util_pct": 97.0, "runqueue_len_mean": 60.0, "ctx_switches_per_s": 2000.0,
           "runq_wait_us_per_sched": 3e4, "wakeup_lat_p50_us": 18000, "wakeup_lat_p99_us": None}
    monkeypatch.setattr(gym_env.SchedCPEnv, "_measure",
                        lambda self: ({"wall_s": random.uniform(3, 5)}, dict(tel), 4.0))
    env = schedcp.env(action_space=space, max_steps=3, backend=Backend())
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=0)
    assert obs[-1] == 1.0 and info["baseline"] == obs[-2]
    for i in range(3):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        assert r == pytest.approx(info["ratio"] - 1 + (0.1 if info["slo_met"] else -0.1))
    assert trunc and not term


def test_tuner_reports_a_wall_time_overrun(tmp_path, monkeypatch):
    from harness.limits import LimitExceeded

    guest = StubGuest(monkeypatch, lambda cfg: 4.0)
    ctx = ctx_for(tmp_path, guest, steps=100)
    ctx.budget.budget.wall_s = 0.0
    with pytest.raises(LimitExceeded) as e:
        make_agent("random").run(ctx)
    assert e.value.kind == "wall_s" and guest.applied[-1] == tuning.Config()  # the defaults left in place


def test_tuner_messages_read_short_figures(tmp_path, monkeypatch):
    """The warm-up run and the final choice read 4 significant digits; the trajectory's
    candidate records keep the measured value as it is."""
    import re

    guest = StubGuest(monkeypatch, lambda cfg: 4 / 3)
    ctx = ctx_for(tmp_path, guest, steps=2)
    make_agent("random", runs_per_candidate=1).run(ctx)
    ev = _events(tmp_path)
    msgs = [e["text"] for e in ev if e["type"] == "message"]
    assert msgs[1] == "random: warm-up run wall_s=1.333"
    assert re.fullmatch(r"random: keeping default \(score 1\.333\); 2 candidates; host CPU \d+\.\d{1,3} s", msgs[2])
    assert [e["score"] for e in ev if e["type"] == "candidate"] == [4 / 3, 4 / 3]
