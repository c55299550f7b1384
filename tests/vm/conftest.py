"""Real-VM tests: a real libvirtd + QEMU guest (TCG here), booted from the default image.

The image is built on first use (about 2 minutes, cached by recipe content), and the
slot's saved state is made with one cold boot; every test then gets a fresh sandbox.
"""

import pytest

from sandbox.factory import backend_for


@pytest.fixture(scope="session")
def backend():
    return backend_for(None, log=print)


@pytest.fixture
def sb(backend):
    with backend.open(job="pytest") as s:
        yield s
