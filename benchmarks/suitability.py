"""How long `check_suitability` takes on 10,000 MNIST digits of 784 pixels (the goal: <= 5 s on 2 cores).

Run:  python -m benchmarks.suitability [--cores 2] [--repeats 3]
Pins itself to ``--cores`` CPUs (where the machine has more) before numpy and torch start their thread pools, then
prints the machine and the median wall time of each call: the full check on flat rows (n, 784) and on images
(n, 28, 28), with labels (the locality stage is clear on MNIST, so "auto" trains no network), and the quick check.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from benchmarks.common import machine_info, machine_line  # imports no numpy or torch before pin()


def pin(cores: int) -> int:
    """Restrict this process to ``cores`` CPUs and the BLAS / OpenMP pools to as many threads; return the count."""
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count()))
    chosen = available[:cores]
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, chosen)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(len(chosen))
    return len(chosen)


def cases(X, y):
    """(name, call) for each timed call, on MNIST's test images X of shape (10000, 28, 28) and their labels y."""
    from gridcnn.suitability import check_suitability, quick_check

    flat = X.reshape(len(X), -1)
    return [
        ("check_suitability(X) on (10000, 784)", lambda: check_suitability(flat, random_state=0)),
        ("check_suitability(X, y) on (10000, 784)", lambda: check_suitability(flat, y, random_state=0)),
        ("check_suitability(X) on (10000, 28, 28)", lambda: check_suitability(X, random_state=0)),
        ("quick_check(X) on (10000, 784)", lambda: quick_check(flat)),
    ]


def timings(call, repeats: int):
    """Wall seconds of ``repeats`` calls, and the last call's result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return times, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cores = pin(args.cores)

    import numpy as np  # after pinning, so their thread pools see the limit

    from gridcnn.data import load_dataset
    X, y = load_dataset("mnist", split="test")
    print(f"Machine: {machine_line(machine_info(numpy=np.__version__))}; {cores} of its cores used")

    print("| call | median s | min s | suitable |")
    print("|---|---|---|---|")
    for name, call in cases(X, y):
        times, report = timings(call, args.repeats)
        print(f"| {name} | {statistics.median(times):.2f} | {min(times):.2f} | {report.suitable} |")


if __name__ == "__main__":
    main()
