"""Goal-inference scoring (RQ2) against the workloads' own ground truth."""

import pytest

from harness.goal import norm_direction, score
from harness.workload import Goal, list_workloads

G = Goal(metric="p99_latency_us", direction="lower", synonyms=["p99 latency", "tail latency"])


@pytest.mark.parametrize("metric,direction,ok", [
    ("p99_latency_us", "lower", True),
    ("P99-Latency-US", "minimize", True),
    ("tail latency (us)", "lower", True),
    ("the p99 latency of requests", "reduce", True),
    ("p99_latency_us", "higher", False),      # right metric, wrong direction
    ("throughput", "higher", False),          # wrong metric
    ("latency", "lower", False),              # too vague: not the goal metric or a synonym
    ("", "lower", False),
])
def test_score(metric, direction, ok):
    assert score(metric, direction, G)["correct"] is ok


def test_score_reports_parts_and_truth():
    s = score("throughput", "lower", G)
    assert s == {"metric_ok": False, "direction_ok": True, "correct": False,
                 "truth": {"metric": "p99_latency_us", "direction": "lower"}}


def test_directions():
    assert norm_direction("Higher is better") == "higher"
    assert norm_direction("maximise") == "higher"
    assert norm_direction("sideways") is None


@pytest.mark.parametrize("wl", list_workloads(), ids=lambda w: w.name)
def test_every_workload_goal_scores_itself(wl):
    g = wl.spec.goal
    assert score(g.metric, g.direction, g)["correct"]
    for syn in g.synonyms:
        assert score(syn, g.direction, g)["correct"]
    other = "higher" if g.direction == "lower" else "lower"
    assert not score(g.metric, other, g)["correct"]


@pytest.mark.parametrize("wl", list_workloads(), ids=lambda w: w.name)
def test_goal_free_description_hides_the_figure_of_merit(wl):
    from harness.prompt import instruction
    from harness.workload import goal_free_description
    from harness.models import Budget

    d = goal_free_description(wl.spec.description)
    assert d and "figure of merit" not in d.lower() and len(d) > 40
    text = instruction(wl, "7.3.4", 2, 4096, slo_hint=False, budget=Budget())
    assert "figure of merit" not in text.lower() and "declare_goal" in text
    assert "figure of merit" in instruction(wl, "7.3.4", 2, 4096, slo_hint=True, budget=Budget()).lower()
