"""Bare defaults against the recipes and scikit-learn, and `gridcnn fit PATH` on data gridcnn has never seen.

Run:  python -m benchmarks.defaults [digits image audio sequence text] [--unseen DIR [--time-limit S]] [--max-train N]

Part 1, per shipped data set: ``GridCNNClassifier(random_state=0)`` behind the recipe's adapter (every estimator
setting left at its default), the shipped recipe as it is, and the best of the scikit-learn baselines of
benchmarks.baselines on the same grids; the same split for all three, one run each. "digits" is sklearn's
digits split first half / second half, the classic small test (only ``input_shape`` given to the CNN).

Part 2 (``--unseen DIR``): data generated offline by `python -m benchmarks.unseen_data` (class folders of images and of
sound files, a CSV of short texts, a numeric table, a table of ordered signals), each given to `gridcnn fit PATH`
with no recipe, against the same baselines on the same split (for texts: TF-IDF + LogisticRegression).
Results go to stdout as markdown tables; benchmarks/RESULTS.md keeps them with the machine.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from gridcnn import GridCNNClassifier
from gridcnn.estimator.pipeline import split_pipeline
from gridcnn.workflow.recipes import build_pipeline, load_split, parse_recipe, read_recipe

from benchmarks.baselines import BASELINES, run_baselines
from benchmarks.common import machine_line
from benchmarks.text_baseline import tfidf_baseline

#: Rows the quadratic or tree baselines get at most (as in benchmarks.run).
MAX_ROWS = {"svc_rbf": 20000, "hist_gb": 10000}


def fmt(acc) -> str:
    return "—" if acc is None else f"{100 * acc:.2f}%"


def grids(recipe, X_train, y_train, X_test):
    adapters, _ = split_pipeline(build_pipeline(recipe))
    if not adapters:
        return np.asarray(X_train, np.float32), np.asarray(X_test, np.float32)
    (adapter,) = adapters
    return adapter.fit_transform(X_train, y_train), adapter.transform(X_test)


def best_baseline(G_train, y_train, G_test, y_test):
    res = run_baselines(G_train, y_train, G_test, y_test, MAX_ROWS)
    name = max(res, key=lambda k: res[k]["accuracy"])
    return BASELINES[name], res[name]["accuracy"]


def text_baseline(X_train, y_train, X_test, y_test):
    """Texts get the text baseline on the sentences (benchmarks.text_baseline: TF-IDF 1-2 grams, C by 5-fold CV):
    sklearn's models on a grid of token ids or vectors are not one."""
    return "TF-IDF + LogisticRegression", tfidf_baseline().fit(X_train, y_train).score(X_test, y_test)


def digits_row():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    h = len(X) // 2
    t = time.perf_counter()
    bare = GridCNNClassifier(input_shape=(8, 8), random_state=0).fit(X[:h], y[:h])
    bare_acc, bare_s = bare.score(X[h:], y[h:]), time.perf_counter() - t
    recipe = read_recipe("digits")
    est = split_pipeline(build_pipeline(recipe))[1].set_params(input_shape=(8, 8))
    t = time.perf_counter()
    recipe_acc = est.fit(X[:h] / 16, y[:h]).score(X[h:] / 16, y[h:])
    recipe_s = time.perf_counter() - t
    name, base = best_baseline(X[:h] / 16, y[:h], X[h:] / 16, y[h:])
    return {"data": "digits, first half / second half", "train": h, "test": len(X) - h, "bare": bare_acc,
            "bare_epochs": bare.n_iter_, "bare_s": bare_s, "recipe": recipe_acc, "recipe_s": recipe_s,
            "baseline": base, "baseline_name": name}


def shipped_row(name: str, max_train: int | None):
    recipe = read_recipe(name)
    if max_train:
        recipe.data["max_train"] = max_train
    X_train, y_train, X_test, y_test = load_split(recipe)
    G_train, G_test = grids(recipe, X_train, y_train, X_test)
    bare_recipe = parse_recipe({**recipe.to_dict(), "estimator": {"random_state": 0}}, source=recipe.source)
    t = time.perf_counter()
    bare = split_pipeline(build_pipeline(bare_recipe))[1].fit(G_train, y_train)
    bare_acc, bare_s = bare.score(G_test, y_test), time.perf_counter() - t
    t = time.perf_counter()
    shipped = split_pipeline(build_pipeline(recipe))[1].fit(G_train, y_train)
    recipe_acc, recipe_s = shipped.score(G_test, y_test), time.perf_counter() - t
    if (recipe.adapter or {}).get("name") == "embedding":
        base_name, base = text_baseline(X_train, y_train, X_test, y_test)
    else:
        base_name, base = best_baseline(G_train, y_train, G_test, y_test)
    return {"data": f"{recipe.data['name']} ({name}.toml)", "train": len(y_train), "test": len(y_test),
            "bare": bare_acc, "bare_epochs": bare.n_iter_, "bare_s": bare_s, "recipe": recipe_acc,
            "recipe_s": recipe_s, "baseline": base, "baseline_name": base_name}


def unseen_rows(root: Path, time_limit: float | None = None):
    from gridcnn.workflow.auto import auto_recipe
    from gridcnn.workflow.runs import fit_recipe

    for path, kw in ((root / "shapes", {}), (root / "sounds", {}), (root / "reviews.csv", {}),
                     (root / "signals.csv", {}), (root / "table.csv", {"force": True})):
        auto = auto_recipe(path, **kw)
        t = time.perf_counter()
        result = fit_recipe(auto.recipe, root / "runs" / path.stem, verbose=0, time_limit=time_limit,
                            overwrite=True)  # a second run over the same folder replaces the first one's runs
        fit_s = time.perf_counter() - t
        X_train, y_train, X_test, y_test = load_split(auto.recipe)
        if auto.kind == "text":
            base_name, base = text_baseline(X_train, y_train, X_test, y_test)
        else:
            G_train, G_test = grids(auto.recipe, X_train, y_train, X_test)
            base_name, base = best_baseline(G_train, y_train, G_test, y_test)
        plan = result.get("time_limit") or {}  # the time limit planned fewer epochs than asked for, or cut them
        cut = plan and plan["planned_epochs"] < plan["asked_epochs"]
        epochs = f"{result['epochs']}" + (f" of {result['stopped']['planned_epochs']}" if "stopped" in result else
                                          f" of {plan['asked_epochs']}" if cut else "")
        yield {"data": path.name, "kind": auto.kind, "train": len(y_train), "test": len(y_test),
                     "auto": result["accuracy"], "epochs": epochs, "fit_s": fit_s, "baseline": base,
                     "baseline_name": base_name,
                     "adapter": next(c for w, c, _ in auto.choices if w == "adapter")}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="Shipped data sets: digits image audio sequence text (default: all "
                        "of them, or none with --unseen).")
    parser.add_argument("--unseen", type=Path, help="Folder written by python -m benchmarks.unseen_data.")
    parser.add_argument("--max-train", type=int, help="Train on a seeded subset of this many rows (quick looks).")
    parser.add_argument("--time-limit", type=float, help="Seconds per unseen data set, as gridcnn fit --time-limit.")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    names = args.names or ([] if args.unseen else ["digits", "image", "audio", "sequence", "text"])
    results = {"machine": machine_line(), "shipped": [], "unseen": []}

    def save():  # after every row: a run stopped hours in keeps what it measured
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=float))

    print(f"Machine: {results['machine']}\n", flush=True)
    if names:
        print("| data set | train / test | bare defaults | epochs (auto) | time (s) | its recipe | time (s) | "
              "best sklearn baseline |\n|---|---|---|---|---|---|---|---|", flush=True)
    for n in names:
        r = digits_row() if n == "digits" else shipped_row(n, args.max_train)
        results["shipped"].append(r)
        save()
        print(f"| {r['data']} | {r['train']:,} / {r['test']:,} | {fmt(r['bare'])} | {r['bare_epochs']} | "
              f"{r['bare_s']:.0f} | {fmt(r['recipe'])} | {r['recipe_s']:.0f} | {fmt(r['baseline'])} "
              f"({r['baseline_name']}) |", flush=True)
    if args.unseen:
        print("\n| data (never seen) | gridcnn chose | train / test | `gridcnn fit PATH` | epochs | time (s) | "
              "best sklearn baseline |\n|---|---|---|---|---|---|---|", flush=True)
        for r in unseen_rows(args.unseen, args.time_limit):
            results["unseen"].append(r)
            save()
            print(f"| {r['data']} | {r['adapter']} | {r['train']:,} / {r['test']:,} | {fmt(r['auto'])} | "
                  f"{r['epochs']} | {r['fit_s']:.0f} | {fmt(r['baseline'])} ({r['baseline_name']}) |", flush=True)
    print(f"\nWhole run {(time.perf_counter() - start) / 60:.1f} min.")

if __name__ == "__main__":
    main()
