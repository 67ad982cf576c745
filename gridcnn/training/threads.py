"""How many threads a fit computes with on a machine that other jobs load.

torch's OpenMP threads spin while they wait for each other. When other jobs hold the cores, the thread waited for
has none and the spinning one burns its turn: on 2 cores at load average 9-11 the digits fit took 23 s an epoch on
two spinning threads and 2.4 s on one. OpenMP's passive wait policy avoids the collapse (3.1 s) but costs 1.7x at a
moderate load (3.5: 0.90 s an epoch against 0.52 spinning and 0.45 on one thread), so one thread is what degrades
gracefully at every load measured (benchmarks/RESULTS.md, "Thread settings under load"): a fit takes one thread while
the one-minute load average exceeds the cores, and torch's own count otherwise. One thread sums in another order, so
a seeded fit's last bits then follow the load (probabilities moved by up to 3e-3 after 3 epochs of digits); set
OMP_WAIT_POLICY=PASSIVE before starting Python to keep the thread count, and the numbers, fixed at any load.
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
