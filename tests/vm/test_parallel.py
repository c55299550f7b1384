"""Concurrent trials: pinned cores per trial, and --parallel 2 on a host too small to
give them separate cores (they run, and the job says that they share)."""

from harness.job import create_job, job_results, run_job
from harness.models import JobConfig
from sandbox.libvirt.backend import host_cores


def test_sandbox_runs_on_the_cores_it_was_given(backend):
    core = host_cores()[-1]
    with backend.open(job="pytest", trial="pinned", cores=(core,)) as sb:
        assert sb.cores == (core,)
        for v in range(backend.shape.vcpus):
            cpumap = sb.dom.vcpuPinInfo(0)[v]
            assert [i for i, on in enumerate(cpumap) if on] == [core]
        assert [i for i, on in enumerate(sb.dom.emulatorPinInfo()) if on] == [core]
        assert sb.run("echo pinned").stdout.strip() == "pinned"


def test_parallel_trials_complete(backend, tmp_path, monkeypatch):
    monkeypatch.setenv("SCHEDCP_JOBS", str(tmp_path / "jobs"))
    cfg = JobConfig(job_id="par", workloads=["sqlite", "hackbench"], agent="linux-default", parallel=2, repeat=1)
    d = create_job(cfg, backend)
    ev = []
    run_job(d, cfg, backend, lambda k, e: ev.append((k, e)))
    res = job_results(d)
    assert sorted(r.workload for r in res) == ["hackbench", "sqlite"] and all(r.status == "done" for r in res)
    kinds = [k for k, _ in ev]
    # both trials started before the first one ended: they ran at once
    assert kinds.index("trial_end") > max(i for i, k in enumerate(kinds) if k == "trial_start")
    if len(host_cores()) < 2 * backend.shape.vcpus:
        assert "warning" in kinds and all(r.host_cores is None for r in res)
    else:
        a, b = (set(r.host_cores) for r in res)
        assert a and b and not a & b
