"""How many threads a fit computes with on a machine that other jobs load.

torch's OpenMP threads spin while they wait for each other. When other jobs hold the cores, the thread waited for
has none and the spinning one burns its turn: on 2 cores at load average 9-11 the digits fit took 23 s an epoch on
two spinning threads, 3.1 s on two passive ones and 2.4 s on one (benchmarks/RESULTS.md, "Thread settings under
load"). ``import gridcnn`` before torch sets OpenMP's passive wait policy (gridcnn/__init__.py), which keeps the
thread count, so a seeded fit gives the same numbers at any load. Where torch was imported first that setting comes
too late, and a fit takes one thread while the load average exceeds the cores; its last bits then follow the load
(torch sums in another order on one thread), which importing gridcnn first, or OMP_WAIT_POLICY=PASSIVE, avoids.
"""

from __future__ import annotations

import contextlib
import os

import torch


def fit_threads_for(threads: int) -> int:
    """The threads a fit takes now, given torch's ``threads``: one while waiting threads spin (OpenMP's wait policy
    is not passive) and the one-minute load average exceeds the cores; else ``threads``."""
    import gridcnn

    if threads <= 1 or gridcnn._OPENMP_PASSIVE or not hasattr(os, "getloadavg"):
        return threads
    return 1 if os.getloadavg()[0] > (os.cpu_count() or 1) else threads


@contextlib.contextmanager
def fit_threads():
    """Train with `fit_threads_for` threads, and put torch's count back afterwards."""
    before = torch.get_num_threads()
    now = fit_threads_for(before)
    if now == before:
        yield
        return
    torch.set_num_threads(now)
    try:
        yield
    finally:
        torch.set_num_threads(before)
