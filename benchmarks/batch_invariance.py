"""Does a row's predict_proba depend on the rows that share the call, and what does a fixed chunk cost?

Run:  python -m benchmarks.batch_invariance [--repeats 5] [--threads 1]
For each network (sklearn check's small model on 8 x 8 grids; the "simple" preset on 28 x 28) and each way of
cutting the rows into forward passes (as given, up to 1024 rows; fixed chunks of k rows, the last one padded; "auto",
the default, a fixed chunk per network sized by its multiply-adds per row), it
prints the largest difference between a row predicted alone, among 10, and among all rows, and the time of
predict_proba for n rows. Prints markdown tables with the machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from gridcnn import GridCNNClassifier
from gridcnn.training import steps as _training

from benchmarks.common import machine_line

MODES = {"as given (<= 1024)": None, "auto (sized by the network's cost)": "auto", "chunk 1": 1, "chunk 8": 8,
         "chunk 16": 16, "chunk 64": 64}


def spread(clf, X) -> float:
    """Largest |difference| of a row's probabilities between calls with different company (alone, 10, all)."""
    full = clf.predict_proba(X)
    worst = 0.0
    rng = np.random.default_rng(0)
    for size in (1, 7, 10, 33, len(X) - 1):
        idx = np.sort(rng.choice(len(X), size=size, replace=False))
        worst = max(worst, float(np.abs(clf.predict_proba(X[idx]) - full[idx]).max()))
    return worst


def seconds(clf, X, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        clf.predict_proba(X)
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--max-rows", type=int, default=10000, help="largest call timed")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    nets = {
        "check's model, 1x8x8": (dict(max_epochs=2, filters=8, hidden=16, pool="none"), (8, 8)),
        "simple preset, 1x28x28": (dict(max_epochs=1), (28, 28)),
    }
    real = _training.PREDICT_CHUNK
    sizes = tuple(n for n in (1, 10, 100, 1000, 10000) if n <= args.max_rows)
    print(f"Machine: {machine_line()}; {torch.get_num_threads()} torch thread(s), CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}\n")
    for name, (params, shape) in nets.items():
        X = rng.random((300, *shape)).astype(np.float32)
        y = np.arange(300) % 3
        clf = GridCNNClassifier(random_state=0, check_input="off", **params).fit(X, y)
        big = rng.random((max(sizes), *shape)).astype(np.float32)
        print(f"### {name}\n\n| forward passes | max spread | " + " | ".join(f"n={n:,} (ms)" for n in sizes) + " |")
        print("|---|---|" + "---|" * len(sizes))
        for mode, chunk in MODES.items():
            _training.PREDICT_CHUNK = chunk
            clf.model_.__dict__.pop("_predict_chunk", None)
            if chunk == "auto":
                clf.predict_proba(X[:1])
                mode = f"auto: chunk {clf.model_._predict_chunk[1]}"
            times = [seconds(clf, big[:n], args.repeats) * 1000 for n in sizes]
            print(f"| {mode} | {spread(clf, X[:60]):.2e} | " + " | ".join(f"{t:.1f}" for t in times) + " |")
        print()
    _training.PREDICT_CHUNK = real


if __name__ == "__main__":
    main()
