"""The image recipe's fit time in *reference epochs*, measured side by side in one run.

A reference epoch is one epoch of the ``simple`` preset at batch 128 over the training digits, trained by the
minimal hand-written torch loop of benchmarks/overhead.py (AdamW lr 1e-3, randperm batches). The recipe
(recipes/image.toml, or ``--recipe``) is fitted exactly as ``gridcnn fit`` would, on the same rows; both times scale
with the number of rows, so ``--n`` below 60,000 screens quickly and the ratio carries over (per-step costs are the
same). Rounds alternate the two (and ``--before``, an earlier ``gridcnn`` copy run in a subprocess).

    python benchmarks/reference_epoch.py --n 60000 --repeats 2   # the definition: every training digit
    python benchmarks/reference_epoch.py --n 6000                # screening
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from gridcnn import GridCNNClassifier
from gridcnn.datasets import load_dataset
from gridcnn.recipes import read_recipe
from overhead import hand_loop

_BEFORE = """
import json, sys, time, torch
sys.path.insert(0, {bench!r})
import reference_epoch as r
torch.set_num_threads({threads})
X, y, Xt, yt = r.data({n})
start = time.perf_counter()
clf = r.recipe_estimator({recipe!r}).fit(X, y)
print(json.dumps([time.perf_counter() - start, float((clf.predict(Xt) == yt).mean())]))
"""


def data(n: int):
    """The first ``n`` of the 60,000 training digits and the 10,000 test digits, as (n, 1, 28, 28) float32."""
    X, y = load_dataset("mnist", split="train_full")
    Xt, yt = load_dataset("mnist", split="test")
    grid = lambda a: np.ascontiguousarray(a.reshape(-1, 1, 28, 28), dtype=np.float32)
    return grid(X[:n]), np.asarray(y[:n], dtype=np.int64), grid(Xt), np.asarray(yt, dtype=np.int64)


def recipe_estimator(path: str) -> GridCNNClassifier:
    """The recipe's estimator with its own parameters (the image adapter only reshapes these digits)."""
    params = read_recipe(path).estimator
    return GridCNNClassifier(**{**params, "device": "cpu", "verbose": 0, "check_input": "off"})


def reference_epoch(X, y) -> float:
    """Seconds of one reference epoch on X, y."""
    spec = GridCNNClassifier(architecture="simple")._resolve_spec()
    start = time.perf_counter()
    hand_loop(spec, X, y, 10, 1, 128, 1e-3, 0)
    return time.perf_counter() - start


def before_fit(before: str, recipe: str, n: int) -> tuple[float, float]:
    code = _BEFORE.format(bench=str(Path(__file__).parent), threads=torch.get_num_threads(), n=n, recipe=recipe)
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": before},
                         capture_output=True, text=True, check=True)
    return tuple(json.loads(out.stdout.strip().splitlines()[-1]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default=str(Path(__file__).parents[1] / "recipes" / "image.toml"))
    parser.add_argument("--n", type=int, default=60_000, help="training digits (default all 60,000)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--before", help="folder holding an earlier gridcnn package, timed alongside")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    X, y, Xt, yt = data(args.n)
    ref, fit, before, acc = [], [], [], {}
    for r in range(args.repeats):
        ref.append(reference_epoch(X, y))
        start = time.perf_counter()
        clf = recipe_estimator(args.recipe).fit(X, y)
        fit.append(time.perf_counter() - start)
        acc["recipe"] = float((clf.predict(Xt) == yt).mean())
        if args.before:
            t, acc["before"] = before_fit(args.before, args.recipe, args.n)
            before.append(t)
    r_ref, r_fit = statistics.median(ref), statistics.median(fit)
    print(f"{args.n} training digits, {args.threads} torch threads, median of {args.repeats} alternated rounds")
    print(f"reference epoch: {r_ref:.2f} s (rounds: {', '.join(f'{t:.2f}' for t in ref)})")
    print(f"recipe fit: {r_fit:.2f} s = {r_fit / r_ref:.2f} reference epochs; test accuracy {100 * acc['recipe']:.2f}%")
    if before:
        r_before = statistics.median(before)
        print(f"recipe fit, code before: {r_before:.2f} s = {r_before / r_ref:.2f} reference epochs; "
              f"test accuracy {100 * acc['before']:.2f}%")


if __name__ == "__main__":
    main()
