"""Every workload that does not *require* a GPU runs at smoke size in a real VM and
yields all its metrics (GPU-optional ones run their CPU path). A GPU-requiring workload
is skipped with the reason the harness gives, never silently."""

import pytest

from harness.bench import run_workload
from harness.workload import backend_refusal, list_workloads

WORKLOADS = list_workloads()


@pytest.mark.parametrize("wl", WORKLOADS, ids=[w.name for w in WORKLOADS])
def test_smoke_run_yields_primary_metric(backend, wl):
    why = backend_refusal(wl.spec, backend)
    if why:
        pytest.skip(why)
    with backend.open(job="pytest-workloads", trial=wl.name) as sb:
        res = run_workload(sb, wl, "smoke", repeat=1, warmup=0)
        # the operator's view of the workload is at its documented path
        listing = sb.run(f"ls {wl.spec.guest_dir()}").stdout.split()
    assert "workload.yaml" in listing and "README.md" in listing
    (run,) = res.runs
    assert set(run.metrics) == {m.name for m in wl.spec.metrics}
    assert run.metrics[wl.spec.primary.metric] > 0
