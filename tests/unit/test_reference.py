"""`make reference`'s own arithmetic (benchmarks/reference.py): the per-workload noise
figure it publishes beside the RQ1 table, on known answers."""

import sys
from pathlib import Path

import pytest

from harness.models import TrialResult

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import reference  # noqa: E402


def trial(workload: str, values: list[float], metric: str = "wall_s") -> TrialResult:
    return TrialResult(trial_id=f"{workload}-{len(values)}-{values[0]}", workload=workload, agent="linux-default",
                       primary_metric=metric, baseline_runs=[{metric: v} for v in values])


def test_baseline_cv_is_the_median_over_trials_of_each_trials_cv():
    rs = [trial("a", [1.0, 2.0, 3.0]),  # stdev 1, mean 2: 0.5
          trial("a", [10.0, 10.0, 10.0]),  # 0
          trial("a", [4.0, 6.0]),  # stdev sqrt(2), mean 5
          trial("b", [100.0, 110.0], metric="ops"),
          trial("c", [5.0])]  # one run: no CV
    cv = reference.baseline_cv(rs)
    assert cv["a"] == pytest.approx(2 ** 0.5 / 5)  # the median of 0, 0.283, 0.5
    assert cv["b"] == pytest.approx((50 ** 0.5) / 105)
    assert "c" not in cv


def test_cv_text_marks_what_is_over_the_target():
    assert reference._cv_text(0.036) == "3.6%"
    assert reference._cv_text(0.0634) == "6.3% (over 5 %)"
    assert reference._cv_text(None) == "-"


def test_the_job_id_digest_follows_what_a_workload_measures_not_its_notes(tmp_path):
    import shutil

    from harness.workload import WORKLOADS_DIR, load_workload

    shutil.copytree(WORKLOADS_DIR / "sqlite", tmp_path / "sqlite")
    spec = tmp_path / "sqlite" / "workload.yaml"
    first = reference.measures(load_workload(str(tmp_path / "sqlite")))
    assert 'noise: "' in spec.read_text()
    spec.write_text(spec.read_text().replace('noise: "', 'noise: "re-measured; ', 1))
    assert reference.measures(load_workload(str(tmp_path / "sqlite"))) == first
    spec.write_text(spec.read_text().replace("@rows 200000", "@rows 300000"))
    second = reference.measures(load_workload(str(tmp_path / "sqlite")))
    assert second != first
    (tmp_path / "sqlite" / "queries.sql").write_text("select 1;\n")
    assert reference.measures(load_workload(str(tmp_path / "sqlite"))) not in (first, second)


def test_only_workloads_whose_digest_changed_run_again():
    assert reference.stale({"a": "1", "b": "2"}, {"a": "1", "b": "3", "c": "4"}) == ["b"]
    assert reference.stale({}, {"a": "1"}) == []


def test_job_ids_stay_those_of_the_recorded_reference():
    """results/tcg-2c-24g-amd-epyc/jobs.json names these: a change to Budget or to the key
    must not orphan the trials already run (make reference would start over)."""
    from harness.models import Budget

    names = ["clickhouse", "context-switch", "faiss", "ffmpeg", "gzip", "hackbench", "kernel-build", "llama-cpp",
             "llvm-build", "nginx", "postgres", "pytorch", "redis", "rocksdb", "sqlite", "wakeup-latency", "xz"]
    p = "tcg-2c-24g-amd-epyc"
    assert reference.reference_job_id(p, names, "linux-default", 2, Budget()) == "reference-linux-default-f0308e6b"
    assert reference.reference_job_id(p, names, "scx-search", 1, Budget()) == "reference-scx-search-02d1f363"
    assert reference.reference_job_id(p, names, "optuna", 1, Budget(steps=6)) == "reference-optuna-6047f05c"


def test_the_report_says_why_the_noisy_workloads_stay_over_the_target():
    why = reference.noisy_why({"redis": 0.111, "gzip": 0.029, "nginx": 0.107}, "tcg")
    assert why.startswith("Why nginx, redis stay over the target:")
    assert "under TCG each instance runs at its own speed" in why
    assert "gzip" not in why
    assert reference.noisy_why({"gzip": 0.029, "sqlite": 0.05}, "tcg") is None
