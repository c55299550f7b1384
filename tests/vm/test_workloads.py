"""Every non-GPU workload runs at smoke size in a real VM and yields all its metrics."""

import pytest

from harness.bench import run_workload
from harness.workload import list_workloads

CPU_WORKLOADS = [w for w in list_workloads() if not w.spec.requirements.gpu]


@pytest.mark.parametrize("wl", CPU_WORKLOADS, ids=[w.name for w in CPU_WORKLOADS])
def test_smoke_run_yields_primary_metric(backend, wl):
    with backend.open(job="pytest-workloads", trial=wl.name) as sb:
        res = run_workload(sb, wl, "smoke", repeat=1, warmup=0)
        # the operator's view of the workload is at its documented path
        listing = sb.run(f"ls {wl.spec.guest_dir()}").stdout.split()
    assert "workload.yaml" in listing and "README.md" in listing
    (run,) = res.runs
    assert set(run.metrics) == {m.name for m in wl.spec.metrics}
    assert run.metrics[wl.spec.primary.metric] > 0
