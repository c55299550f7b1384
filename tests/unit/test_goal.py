"""Goal-inference scoring (RQ2) against the workloads' own ground truth."""

import pytest

from harness.goal import catch_all, norm_direction, score
from harness.workload import Goal, list_workloads, load_workload

G = Goal(metric="p99_latency_us", direction="lower", synonyms=["p99 latency", "tail latency"])
METRICS = ["p99_latency_us", "p50_latency_us", "ops_per_s"]


@pytest.mark.parametrize("metric,direction,ok", [
    ("p99_latency_us", "lower", True),
    ("P99-Latency-US", "minimize", True),
    ("tail latency (us)", "lower", True),
    ("the p99 latency of requests", "reduce", True),
    ("p99 latency, tail latency", "lower", True),  # one metric, said twice
    ("p99_latency_us", "higher", False),      # right metric, wrong direction
    ("throughput", "higher", False),          # wrong metric
    ("latency", "lower", False),              # too vague: not the goal metric or a synonym
    ("", "lower", False),
    ("p99_latency_us", "lower or higher", False),  # two directions
])
def test_score(metric, direction, ok):
    assert score(metric, direction, G)["correct"] is ok
    assert score(metric, direction, G, METRICS)["correct"] is ok


def test_score_reports_parts_and_truth():
    s = score("throughput", "lower", G)
    assert s == {"metric_ok": False, "direction_ok": True, "catch_all": False, "correct": False,
                 "reason": "not the goal metric or one of its synonyms",
                 "truth": {"metric": "p99_latency_us", "direction": "lower"}}
    assert score("p99 latency", "lower", G)["reason"] == ""


# catch-all declarations: a list of alternatives is wrong even when the goal is among them
@pytest.mark.parametrize("wl,metric", [
    ("hackbench", "throughput or wall time or p99 latency"),
    ("hackbench", "completion time or throughput"),
    ("hackbench", "latency, throughput"),
    ("hackbench", "wall_s/ops_per_s"),
    ("hackbench", "completion time and latency"),
    ("hackbench", "runtime; throughput"),
    ("hackbench", "runtime vs throughput"),
    ("wakeup-latency", "p99 latency or p50 latency"),
    ("wakeup-latency", "p99/p50 latency"),
    ("redis", "get_rps and set_rps"),
    ("redis", "get_rps set_rps"),                 # two metric names, no separator
    ("redis", "throughput | p99 latency"),
    ("faiss", "flat_qps, ivf_qps"),               # "qps" is the goal's synonym, but two metrics are named
    ("nginx", "requests per second or p99 latency"),
    ("context-switch", "latency per op or ops per second"),
    ("clickhouse", "query time and load time"),
    ("llama-cpp", "tokens/s or latency"),
])
def test_catch_alls_are_wrong(wl, metric):
    spec = load_workload(wl).spec
    s = score(metric, spec.goal.direction, spec.goal, [m.name for m in spec.metrics])
    assert s["correct"] is False and s["catch_all"] is True and s["metric_ok"] is False, s
    assert s["reason"].startswith(("a list of alternatives", "names several")), s


# one metric, even with a unit's "/" or an "and" that joins no alternatives
@pytest.mark.parametrize("wl,metric", [
    ("hackbench", "completion time"),
    ("hackbench", "elapsed time (s)"),
    ("redis", "GET requests per second"),
    ("redis", "ops/s"),
    ("rocksdb", "read ops/s"),
    ("postgres", "transactions per second (tps)"),
    ("llama-cpp", "tokens per second"),
    ("nginx", "p99_latency_ms"),                 # listed as a synonym by the ground truth
    ("wakeup-latency", "p99 latency, tail latency"),
    ("context-switch", "round trip time"),
])
def test_single_declarations_are_accepted(wl, metric):
    spec = load_workload(wl).spec
    s = score(metric, spec.goal.direction, spec.goal, [m.name for m in spec.metrics])
    assert s["correct"] is True and not s["catch_all"] and s["reason"] == "", s


@pytest.mark.parametrize("wl,metric", [
    ("faiss", "ivf qps"),                       # contains the synonym "qps", but names ivf_qps
    ("llama-cpp", "prompt tokens per second"),  # contains "tokens per second", names prompt_tokens_per_s
])
def test_a_phrase_naming_another_metric_is_wrong(wl, metric):
    spec = load_workload(wl).spec
    s = score(metric, spec.goal.direction, spec.goal, [m.name for m in spec.metrics])
    assert s["correct"] is False and not s["catch_all"] and "names another" in s["reason"], s


def test_catch_all_without_metric_names():
    assert catch_all("latency or throughput", G)
    assert catch_all("ops/s", G) == "" and catch_all("time to send and receive messages", G) == ""


def test_directions():
    assert norm_direction("Higher is better") == "higher"
    assert norm_direction("maximise") == "higher"
    assert norm_direction("minimize max latency") == "lower"  # the first direction word
    assert norm_direction("sideways") is None
    assert norm_direction("lower or higher") is None
    assert norm_direction("higher/lower") is None


@pytest.mark.parametrize("wl", list_workloads(), ids=lambda w: w.name)
def test_every_workload_goal_scores_itself(wl):
    g = wl.spec.goal
    names = [m.name for m in wl.spec.metrics]
    assert score(g.metric, g.direction, g, names)["correct"]
    for syn in g.synonyms:
        assert score(syn, g.direction, g, names)["correct"], syn
    other = "higher" if g.direction == "lower" else "lower"
    assert not score(g.metric, other, g, names)["correct"]
    if len(names) > 1:  # every pair of the workload's metrics is a catch-all
        alt = next(n for n in names if n != g.metric)
        assert score(f"{g.metric} or {alt}", g.direction, g, names)["catch_all"]


@pytest.mark.parametrize("wl", list_workloads(), ids=lambda w: w.name)
def test_goal_free_description_hides_the_figure_of_merit(wl):
    from harness.prompt import instruction
    from harness.workload import goal_free_description
    from harness.models import Budget

    d = goal_free_description(wl.spec.description)
    assert d and "figure of merit" not in d.lower() and len(d) > 40
    text = instruction(wl, "7.3.4", 2, 4096, slo_hint=False, budget=Budget())
    assert "figure of merit" not in text.lower() and "declare_goal" in text
    assert "ONE metric" in text and "before declare_goal" in text
    for m in wl.spec.metrics:  # the instruction names no metric
        assert m.name not in text
    assert "figure of merit" in instruction(wl, "7.3.4", 2, 4096, slo_hint=True, budget=Budget()).lower()
