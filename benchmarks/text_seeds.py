"""A recipe's test accuracy over training seeds: the figure the text recipe's target is set on (Rotten Tomatoes).

Run:  python -m benchmarks.text_seeds [--recipe recipes/text.toml] [--seeds 0,1,2,3,4] [--set estimator.KEY=VALUE ...]
The recipe's split and adapter are made once (the adapter's fit does not depend on the seed); then one
`GridCNNClassifier` per seed is fitted, as `gridcnn fit` would with ``--set estimator.random_state=SEED``. Prints one
markdown row per seed (accuracy, fit seconds) and the mean, with the machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.base import clone

from gridcnn.workflow.recipes import build_pipeline, load_split, read_recipe

from benchmarks.common import machine_line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/text.toml")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated training random_state values")
    parser.add_argument("--set", action="append", default=[], help="recipe override, as gridcnn fit --set")
    args = parser.parse_args()
    recipe = read_recipe(args.recipe, args.set)
    X_train, y_train, X_test, y_test = load_split(recipe)
    pipe = build_pipeline(recipe)
    adapter, est = pipe[0], pipe[-1]
    start = time.perf_counter()
    G_train, G_test = adapter.fit_transform(X_train), adapter.transform(X_test)
    print(f"{args.recipe} {' '.join(args.set)}: grids {G_train.shape[1:]} made in {time.perf_counter() - start:.1f} s "
          f"on {machine_line()}\n\n| seed | test accuracy | fit (s) |\n|---|---|---|", flush=True)
    scores = []
    for seed in (int(s) for s in args.seeds.split(",")):
        model = clone(est).set_params(random_state=seed)
        start = time.perf_counter()
        model.fit(G_train, y_train)
        seconds = time.perf_counter() - start
        scores.append(model.score(G_test, y_test))
        print(f"| {seed} | {scores[-1]:.2%} | {seconds:.0f} |", flush=True)
    print(f"| mean | {np.mean(scores):.2%} (min {min(scores):.2%}, max {max(scores):.2%}) | |")


if __name__ == "__main__":
    main()
