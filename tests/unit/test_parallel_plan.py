"""Core plans for concurrent trials (sandbox/libvirt/backend.py)."""

import os

from sandbox.libvirt.backend import default_parallel, host_cores, plan_cores


def test_plan_gives_disjoint_cores_or_none():
    n = len(host_cores())
    plan = plan_cores(1, 1)
    assert plan == [(host_cores()[0],)]
    full = plan_cores(n, 1)
    assert sorted(c for p in full for c in p) == host_cores()
    assert plan_cores(n + 1, 1) is None  # more than the host has: shared, never overlapping plans
    if n >= 2:
        two = plan_cores(1, 2)
        assert len(two[0]) == 2 and len(set(two[0])) == 2


def test_default_parallel_follows_cores_and_memory():
    n = len(os.sched_getaffinity(0))
    assert default_parallel(1, 256) <= n
    assert default_parallel(n, 256) == 1
    assert default_parallel(1, 10**9) == 1  # memory-bound: still at least one
