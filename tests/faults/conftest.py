"""Fault-injection tests (issue 8): each injects one fault into a real VM, the harness
or the model API, and asserts the exact outcome. `make test-faults` runs them (and the
other tests marked ``fault``) and ends with the tally line."""

import pytest

from sandbox.factory import backend_for
from sandbox.libvirt.backend import VMShape
from tests.vm.conftest import backend, sb  # noqa: F401  (fixtures)
from tests.vm.test_harness import api  # noqa: F401  (fixture)


@pytest.fixture(scope="session")
def small_backend():
    """1 vCPU, 1 GiB: bounds that a 2-core host can show being enforced."""
    return backend_for(None, shape=VMShape(vcpus=1, memory_mib=1024), log=print)
