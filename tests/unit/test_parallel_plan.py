"""Core plans for concurrent trials, and which VM start errors are retried (sandbox/libvirt/backend.py)."""

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


def test_transient_start_errors_are_retried_and_others_are_not():
    from sandbox.libvirt.backend import start_retryable

    # seen in CI with two trials in parallel (libvirt 11.3, kernel 6.18)
    assert start_retryable("failed to load cgroup BPF prog: Resource temporarily unavailable")
    assert start_retryable("internal error: process exited while connecting to monitor: "
                           "qemu-system-x86_64: -netdev user,...: could not set up host forwarding rule")
    assert not start_retryable("Cannot access storage file '/x/overlay.qcow2': No such file or directory")
    assert not start_retryable("operation failed: domain 'schedcp-x' already exists with uuid 1")
