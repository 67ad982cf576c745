"""The image recipe's fit time in *reference epochs*, measured side by side in one run.

A reference epoch is one epoch of the ``simple`` preset at batch 128 over the training digits, trained by the
minimal hand-written torch loop of benchmarks.overhead (AdamW lr 1e-3, randperm batches). The recipe
(the shipped image.toml, or ``--recipe``) is fitted exactly as ``gridcnn fit`` would, on the same rows; both times scale
with the number of rows, so ``--n`` below 60,000 screens quickly and the ratio carries over (per-step costs are the
same). Rounds alternate the two (and ``--before``, an earlier ``gridcnn`` copy run in a subprocess).

    python -m benchmarks.reference_epoch --n 60000 --repeats 2   # the definition: every training digit
    python -m benchmarks.reference_epoch --n 60000 --seeds 0 1 2 # the target: one round per random_state
    python -m benchmarks.reference_epoch --n 6000                # screening
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from gridcnn import GridCNNClassifier
from gridcnn.data import load_dataset
from gridcnn.workflow.recipes import RECIPES_DIR, read_recipe

from benchmarks.common import machine_line, run_before
from benchmarks.overhead import hand_loop

#: The shipped image recipe, the default of --recipe.
RECIPE = str(RECIPES_DIR / "image.toml")

_BEFORE = """
import json, time, torch
from benchmarks import reference_epoch as r
torch.set_num_threads({threads})
X, y, Xt, yt = r.data({n})
start = time.perf_counter()
clf = r.recipe_estimator({recipe!r}, {seed!r}).fit(X, y)
print(json.dumps([time.perf_counter() - start, float((clf.predict(Xt) == yt).mean())]))
"""


def data(n: int):
    """The first ``n`` of the 60,000 training digits and the 10,000 test digits, as (n, 1, 28, 28) float32."""
    X, y = load_dataset("mnist", split="train_full")
    Xt, yt = load_dataset("mnist", split="test")
    grid = lambda a: np.ascontiguousarray(a.reshape(-1, 1, 28, 28), dtype=np.float32)
    return grid(X[:n]), np.asarray(y[:n], dtype=np.int64), grid(Xt), np.asarray(yt, dtype=np.int64)


def recipe_estimator(path: str, seed: int | None = None) -> GridCNNClassifier:
    """The recipe's estimator with its own parameters (the image adapter only reshapes these digits); ``seed``
    replaces its random_state."""
    params = read_recipe(path).estimator
    if seed is not None:
        params = {**params, "random_state": seed}
    return GridCNNClassifier(**{**params, "device": "cpu", "verbose": 0, "check_input": "off"})


def reference_epoch(X, y) -> tuple[float, float]:
    """Wall and CPU seconds of one reference epoch on X, y."""
    spec = GridCNNClassifier(architecture="simple")._resolve_spec()
    start, cpu = time.perf_counter(), time.process_time()
    hand_loop(spec, X, y, 10, 1, 128, 1e-3, 0)
    return time.perf_counter() - start, time.process_time() - cpu


def before_fit(before: str, recipe: str, n: int, seed: int | None) -> tuple[float, float]:
    code = _BEFORE.format(threads=torch.get_num_threads(), n=n, recipe=recipe, seed=seed)
    return tuple(run_before(before, code))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default=RECIPE)
    parser.add_argument("--n", type=int, default=60_000, help="training digits (default all 60,000)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--before", help="folder holding an earlier gridcnn package, timed alongside")
    parser.add_argument("--seeds", type=int, nargs="+",
                        help="one round per seed, the recipe fitted with that random_state (the target's 0 1 2); "
                             "replaces --repeats")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"Machine: {machine_line()}", flush=True)
    X, y, Xt, yt = data(args.n)
    seeds = args.seeds or [None] * args.repeats
    # CPU seconds beside wall seconds: on a shared machine a process's CPU time barely moves with the load (one
    # torch thread: it counts the work, not the waiting), while its wall time moves with whatever else runs.
    ref, fit, ref_cpu, fit_cpu, before, acc, acc_before = [], [], [], [], [], [], []
    for seed in seeds:
        wall, cpu = reference_epoch(X, y)
        ref.append(wall)
        ref_cpu.append(cpu)
        start, cpu = time.perf_counter(), time.process_time()
        clf = recipe_estimator(args.recipe, seed).fit(X, y)
        fit.append(time.perf_counter() - start)
        fit_cpu.append(time.process_time() - cpu)
        acc.append(float((clf.predict(Xt) == yt).mean()))
        if args.before:
            t, a = before_fit(args.before, args.recipe, args.n, seed)
            before.append(t)
            acc_before.append(a)
        print(f"round {len(ref)} (random_state {'recipe' if seed is None else seed}): reference epoch {ref[-1]:.2f} s "
              f"({ref_cpu[-1]:.2f} s CPU), recipe fit {fit[-1]:.2f} s ({fit_cpu[-1]:.2f} s CPU) = "
              f"{fit[-1] / ref[-1]:.2f} reference epochs ({fit_cpu[-1] / ref_cpu[-1]:.2f} in CPU time), test accuracy "
              f"{100 * acc[-1]:.2f}%" + (f"; code before {before[-1]:.2f} s, {100 * a:.2f}%" if before else ""),
              flush=True)
    r_ref, r_fit = statistics.median(ref), statistics.median(fit)
    c_ref, c_fit = statistics.median(ref_cpu), statistics.median(fit_cpu)
    pct = lambda a: ", ".join(f"{100 * v:.2f}%" for v in a)  # noqa: E731
    print(f"{args.n} training digits, {args.threads} torch threads, median of {len(seeds)} alternated rounds")
    print(f"reference epoch: {r_ref:.2f} s (rounds: {', '.join(f'{t:.2f}' for t in ref)})")
    print(f"reference epoch CPU time: {c_ref:.2f} s (rounds: {', '.join(f'{t:.2f}' for t in ref_cpu)})")
    print(f"recipe fit: {r_fit:.2f} s = {r_fit / r_ref:.2f} reference epochs ({c_fit:.2f} s CPU = "
          f"{c_fit / c_ref:.2f} in CPU time); test accuracy {pct(acc)} (median {100 * statistics.median(acc):.2f}%)")
    if before:
        r_before = statistics.median(before)
        print(f"recipe fit, code before: {r_before:.2f} s = {r_before / r_ref:.2f} reference epochs; "
              f"test accuracy {pct(acc_before)} (median {100 * statistics.median(acc_before):.2f}%)")


if __name__ == "__main__":
    main()
