"""Test accuracy after every epoch of the image recipe's estimator, with parameters overridden: the screen behind
the recipe's choice of network (benchmarks/RESULTS.md, Speed, "MNIST in reference epochs").

The one-cycle schedule depends on ``max_epochs``, so only the last epoch is what a fit of that length gives; the
earlier ones show how fast it gets there. Evaluating on the test digits after each epoch is not counted in the
epoch times.

    python -m benchmarks.epoch_accuracy --set 'filters=[32,64]' --set kernel_size=5 --set stride=2 \\
        --set pool='"none"' --set max_epochs=10 --seed 1
"""

from __future__ import annotations

import argparse
import json
import tomllib

import torch

from benchmarks.common import machine_line
from benchmarks.reference_epoch import RECIPE, data, recipe_estimator


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default=RECIPE)
    parser.add_argument("--set", action="append", default=[], help="an estimator parameter as KEY=TOML-VALUE")
    parser.add_argument("--seed", type=int, default=0, help="random_state of the fit")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n", type=int, default=60_000, help="training digits (default all 60,000)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    overrides = {k: v for item in args.set for k, v in tomllib.loads(item).items()}
    X, y, Xt, yt = data(args.n)
    accuracy = []
    clf = recipe_estimator(args.recipe, args.seed).set_params(
        **overrides, callbacks=[lambda est, record: accuracy.append(float((est.predict(Xt) == yt).mean()))])
    clf.fit(X, y)
    times = [r["time"] for r in clf.history_]
    print(f"Machine: {machine_line()}")
    print(json.dumps({"overrides": overrides, "seed": args.seed, "fit_s": round(sum(times), 1),
                      "epoch_s": [round(t, 1) for t in times], "accuracy": [round(100 * a, 2) for a in accuracy]}))


if __name__ == "__main__":
    main()
