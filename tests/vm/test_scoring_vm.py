"""The measurement design end to end (real VMs): a steadily drifting program comes out at
1.00x within its CI under the balanced order (and the same runs paired in the old fixed
order show the bias); a workload the agent's changes break is the agent's failure."""

from pathlib import Path

import pytest

from harness.models import Budget, TrialConfig
from harness.stats import paired_compare
from harness.trial import run_trial
from tests.fake_anthropic import tool_use
from tests.vm.test_harness import api  # noqa: F401  (fixture)

DRIFT = Path(__file__).resolve().parents[1] / "fixtures" / "workloads" / "drift"


def test_drift_is_one_in_balanced_order_and_biased_in_fixed_order(backend, tmp_path):
    cfg = TrialConfig(trial_id="drift__linux-default__a0", workload=str(DRIFT), agent="linux-default", repeat=4)
    res = run_trial(cfg, tmp_path / "t", backend)
    assert res.status == "done", res.failure
    assert res.order == ["BT", "TB", "TB", "BT"] or res.order == ["TB", "BT", "BT", "TB"]
    measured = [m for m in res.measurements if not m["warmup"]]
    assert len(measured) == 8 and len({m["instance"] for m in measured}) == 8  # a fresh instance per run
    assert {m["state"] for m in measured if m["role"] == "baseline"} != {m["state"] for m in measured
                                                                          if m["role"] == "tuned"}
    values = [m["metrics"]["value"] for m in measured]
    assert values == sorted(values), values  # the program really drifts, run after run
    lo, hi = res.improvement["ci95"]
    assert lo <= 1.0 <= hi and res.improvement["ratio"] == pytest.approx(1.0, abs=0.02), res.improvement
    # the same runs, paired as the old fixed order would have run them (B then T in every
    # round): the later run of each pair is always "tuned", and the drift becomes a
    # confident, wrong regression
    fixed = paired_compare(values[0::2], values[1::2], "lower")
    assert fixed["ci95"][1] < 1.0, fixed
    assert res.verdict in ("no_change", "inconclusive") and res.verdict_detail["indicative"] is True


def test_workload_broken_by_the_agent_is_its_failure(backend, api, tmp_path):  # noqa: F811
    api([tool_use(("bash", {"command": "rm /opt/schedcp/workloads/drift/measure.sh"})),
         tool_use(("finish", {"summary": "made it faster"}))])
    cfg = TrialConfig(trial_id="drift__claude__a0", workload=str(DRIFT), agent="claude", model="claude-sonnet-4-6",
                      repeat=2, budget=Budget(steps=5, wall_s=300))
    res = run_trial(cfg, tmp_path / "t", backend, agent_kwargs={"backoff_s": 0.1})
    assert res.status == "failed" and res.failure_kind == "workload_broken", (res.failure_kind, res.failure)
    assert "measure.sh" in res.failure and "baseline" in res.failure
    assert not res.improvement.get("ratio")
    assert (tmp_path / "t" / "result.json").is_file()
