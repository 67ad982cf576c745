"""Shared test set-up."""

import os

import pytest
import torch

# Under pytest-xdist each worker gets one core: torch's default of one thread per core in every worker would
# oversubscribe the CPU and make the suite several times slower.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


@pytest.fixture
def one_thread():
    """Train on one thread: the test grids are small, and on a busy 2-core machine two threads stall each other."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
