"""Shared test set-up."""

import os

import torch

# Under pytest-xdist each worker gets one core: torch's default of one thread per core in every worker would
# oversubscribe the CPU and make the suite several times slower.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
