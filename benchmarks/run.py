"""Benchmarks side by side: every recipe against sklearn baselines, training speed against skorch and a hand loop.

    python -m benchmarks.run                                   # the full run: tens of minutes on 2 cores
    python -m benchmarks.run --quick                           # reduced, under 5 minutes
    python -m benchmarks.run --quick --max-train 300 --only digits,sequence   # the CI smoke test, seconds
    python -m benchmarks.run --results-md benchmarks/RESULTS.md  # also fill RESULTS.md's sections and its chart
    python -m benchmarks.run --from-json runs/benchmarks/results.json --results-md benchmarks/RESULTS.md

For each recipe (digits, MNIST, spoken digits, Rotten Tomatoes, MNIST-1D) it loads the recipe's split once, turns it
into grids with the recipe's adapter, trains the recipe's GridCNNClassifier and the sklearn baselines on the same
grids (flattened), and on image, audio and sequence grids times one module trained three ways. Then log-mel
throughput against librosa and the suitability check on 10,000 x 784. Writes ``results.json``, ``results.md`` and
``accuracy.png`` into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from sklearn.base import clone

from gridcnn.estimator.pipeline import split_pipeline
from gridcnn.workflow.recipes import RECIPES_DIR, at_most, build_pipeline, load_split, read_recipe

from benchmarks import logmel, report, speed, suitability
from benchmarks.baselines import BASELINES, fit_and_score, run_baselines
from benchmarks.text_baseline import tfidf_baseline


@dataclass(frozen=True)
class DataSet:
    """A recipe to benchmark: its label in the tables, its baselines and the published numbers to show beside it."""

    label: str
    baselines: tuple = tuple(BASELINES)
    skipped: dict = field(default_factory=dict)
    references: tuple = ()


# Measured once on this 2-core machine while it was shared, which is why these two are not run on the token grids.
_WIDE = "left out on the 47 x 384 = 18,048-column token grids"
DATASETS = {
    "digits": DataSet("digits 8x8"),
    "image": DataSet("MNIST", references=(("LeNet-5", 0.9905), ("Keras convnet", 0.9922))),
    "audio": DataSet("spoken digits"),
    "text": DataSet(
        "Rotten Tomatoes", baselines=("logreg", "mlp"),
        skipped={"svc_rbf": f"SVC {_WIDE}: on 2,000 rows it took 43 s to fit and 278 s to predict, for 60.6%",
                 "hist_gb": f"HistGradientBoosting {_WIDE}: 92 s to fit 1,000 rows, for 50.8%"},
        references=(("Kim 2014 CNN-static", 0.810), ("Kim 2014 CNN-non-static", 0.815)),
    ),
    "sequence": DataSet("MNIST-1D", references=(("paper CNN", 0.94), ("paper MLP", 0.68))),
}


@dataclass(frozen=True)
class Profile:
    """How much of each benchmark a run does."""

    name: str
    max_train: dict  # data set -> training rows (absent: the recipe's)
    epochs: dict  # data set -> GridCNNClassifier epochs (absent: the recipe's)
    max_cells: dict  # baseline -> most training rows x columns (absent: every row)
    speed: dict  # data set -> (rows or None for all, epochs) of the three-trainer comparison
    repeats: int  # timed fits per trainer
    clips: int  # one-second clips for log-mel
    suitability_repeats: int


# Row budgets in cells (rows x columns) because the cost of SVC and of HistGradientBoosting grows with both: 16M
# cells are 20,408 MNIST rows or every spoken-digit row (2,520 columns); 8M are 10,204 MNIST rows.
FULL = Profile("full", max_train={}, epochs={}, max_cells={"svc_rbf": 16_000_000, "hist_gb": 8_000_000},
               speed={"image": (5000, 2), "audio": (None, 2), "sequence": (None, 5)}, repeats=3, clips=1000,
               suitability_repeats=3)
QUICK = Profile("quick", max_train={"image": 5000, "text": 3000},
                epochs={"image": 2, "audio": 3, "text": 2, "sequence": 10},
                max_cells={"logreg": 20_000_000, "mlp": 20_000_000, "svc_rbf": 1_600_000, "hist_gb": 1_000_000},
                speed={"image": (2000, 1), "audio": (800, 1), "sequence": (2000, 2)}, repeats=2, clips=200,
                suitability_repeats=1)


def log(text: str) -> None:
    print(text, flush=True)


def recipe_for(name: str, profile: Profile, max_train: int | None):
    """The shipped recipe ``name`` with the profile's reductions (and --max-train) applied as overrides."""
    limits = [n for n in (profile.max_train.get(name), max_train) if n]
    overrides = [f"data.max_train={min(limits)}"] if limits else []
    if name in profile.epochs:
        overrides.append(f"estimator.max_epochs={profile.epochs[name]}")
    return read_recipe(RECIPES_DIR / f"{name}.toml", overrides)


def run_dataset(name: str, profile: Profile, max_train: int | None) -> tuple[dict, tuple]:
    """Accuracy and fit time of the recipe's CNN and of the baselines on one data set; also returns its grids."""
    ds = DATASETS[name]
    recipe = recipe_for(name, profile, max_train)
    X_train, y_train, X_test, y_test = load_split(recipe)
    (adapter,), est = split_pipeline(build_pipeline(recipe, verbose=0))  # every recipe here has one adapter
    start = time.perf_counter()
    G_train, G_test = adapter.fit_transform(X_train, y_train), adapter.transform(X_test)
    transform_s = time.perf_counter() - start
    log(f"[{name}] {len(y_train):,} train / {len(y_test):,} test grids of {tuple(G_train.shape[1:])} "
        f"({transform_s:.1f} s to make)")
    models = {"gridcnn": fit_and_score(est, G_train, y_train, G_test, y_test)}
    models["gridcnn"]["epochs"] = int(est.n_iter_)
    B_train, B_test = G_train, G_test
    if getattr(adapter, "output", None) == "ids":  # a non-static text CNN reads ids; the baselines read the vectors
        vectors = clone(adapter).set_params(output="vectors")
        B_train, B_test = vectors.fit_transform(X_train), vectors.transform(X_test)
    cols = int(np.prod(B_train.shape[1:]))
    rows = {k: max(1, cells // cols) for k, cells in profile.max_cells.items()}
    models.update(run_baselines(B_train, y_train, B_test, y_test, rows, names=ds.baselines))
    if name == "text":  # the usual text baseline reads the sentences, not the grids
        models["tfidf_logreg"] = fit_and_score(tfidf_baseline(), X_train, y_train, X_test, y_test)
    for key, r in models.items():
        log(f"[{name}] {report.MODELS[key]:28s} {report.pct(r['accuracy']):>7s}  fit {r['fit_s']:6.1f} s  "
            f"({r['n_train']:,} rows)")
    result = {"label": ds.label, "recipe": str(Path(recipe.source).relative_to(RECIPES_DIR.parent)),
              "n_train": len(y_train), "n_test": len(y_test), "grid_shape": list(G_train.shape[1:]),
              "transform_s": transform_s, "models": models, "skipped": ds.skipped,
              "references": [list(r) for r in ds.references]}
    return result, (est, G_train, y_train, G_test, y_test)


def run_speed(name: str, profile: Profile, est, G_train, y_train, G_test, y_test) -> dict:
    """The three trainers on (a seeded subset of) this data set's grids."""
    rows, epochs = profile.speed[name]
    X, y = at_most(G_train, np.asarray(y_train), rows, 0)
    result = speed.compare(est, X, y, G_test, y_test, epochs=epochs, repeats=profile.repeats)
    t = result["median_s"]
    log(f"[{name}] speed: " + ", ".join(f"{k} {v:.2f} s" for k, v in t.items())
        + f"; gridcnn/hand {result['ratios']['gridcnn/hand']:.3f}"
        + (f", gridcnn/skorch {result['ratios']['gridcnn/skorch']:.3f}" if "skorch" in t else f"; {result['skorch']}"))
    return result


def run_extras(profile: Profile) -> tuple[dict, list]:
    """Log-mel throughput against librosa, and the suitability check's time on MNIST's 10,000 test digits."""
    from gridcnn.data import load_dataset

    lm = logmel.measure(logmel.chirps(profile.clips))
    log(f"log-mel: librosa {lm['librosa_s']:.2f} s, SpectrogramGrid {lm['adapter_s']['cpu']:.2f} s "
        f"for {lm['clips']} clips")
    X, y = load_dataset("mnist", split="test")
    rows = []
    for call, fn in suitability.cases(X, y):
        seconds, rep = suitability.timings(fn, profile.suitability_repeats)
        rows.append({"call": call, "seconds": seconds, "suitable": bool(rep.suitable)})
        log(f"suitability: {call}: {np.median(seconds):.2f} s")
    return lm, rows


def write_outputs(results: dict, out: Path, results_md: Path | None) -> None:
    """results.json, results.md and accuracy.png into ``out``; with ``results_md``, its sections and chart too."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(report.markdown(results))
    report.plot_accuracy(results, out / "accuracy.png")
    if results_md is not None:
        text = results_md.read_text() if results_md.exists() else "# Benchmark results\n"
        results_md.write_text(report.fill_sections(text, report.sections(results)))
        if (out / "accuracy.png").resolve() != (results_md.parent / "accuracy.png").resolve():
            shutil.copyfile(out / "accuracy.png", results_md.parent / "accuracy.png")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a reduced run (subsets, fewer epochs), < 5 minutes")
    parser.add_argument("--only", default=",".join(DATASETS), help=f"comma-separated, of {', '.join(DATASETS)}")
    parser.add_argument("--max-train", type=int, default=None, help="at most this many training rows per data set")
    parser.add_argument("--out", default="runs/benchmarks", help="folder for results.json, results.md, accuracy.png")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch and BLAS/OpenMP threads (default: 1 with --quick, else the libraries' own)")
    parser.add_argument("--results-md", default=None, help="also fill the run.py sections of this RESULTS.md")
    parser.add_argument("--from-json", default=None, help="rebuild the outputs from an earlier results.json; no run")
    args = parser.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in args.only if s not in DATASETS]
    if unknown:
        parser.error(f"--only: unknown data set(s) {', '.join(unknown)}; choose from {', '.join(DATASETS)}")
    if args.max_train is not None and args.max_train < 20:
        parser.error(f"--max-train must be at least 20 (every class needs rows). Got {args.max_train}.")
    return args


def main(argv=None) -> dict:
    """Run the benchmarks the arguments ask for and write their outputs; returns the results dict."""
    args = parse_args(argv)
    out, results_md = Path(args.out), Path(args.results_md) if args.results_md else None
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
        write_outputs(results, out, results_md)
        return results
    profile = QUICK if args.quick else FULL
    # A quick run is a check made on whatever machine is at hand; on a busy 2-core machine two OpenMP threads stall
    # each other (HistGradientBoosting on MNIST-1D: 3.4 s on one thread, 22-38 s on two at a load average of 2.5).
    threads = args.threads or (1 if args.quick else None)
    if threads:
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(threads)
        threadpool_limits(threads)  # sklearn's BLAS and OpenMP pools, which HistGradientBoosting and SVC use
    start = time.perf_counter()
    results = {"profile": profile.name, "profile_settings": asdict(profile), "command": command(args),
               "profile_note": profile_note(profile, args), "machine": report.run_machine(),
               "datasets": {}, "speed": {}}
    for name in args.only:
        results["datasets"][name], data = run_dataset(name, profile, args.max_train)
        if name in profile.speed:
            results["speed"][DATASETS[name].label] = run_speed(name, profile, *data)
    results["logmel"], results["suitability"] = run_extras(profile)
    results["wall_s"] = time.perf_counter() - start
    results["load_average_end"] = os.getloadavg()[0]
    write_outputs(results, out, results_md)
    log(f"wrote {out / 'results.json'}, {out / 'results.md'} and {out / 'accuracy.png'} in {results['wall_s']:.0f} s")
    return results


def command(args) -> str:
    """The options that shape the numbers, as they would be typed (not --out or --results-md)."""
    parts = ["--quick"] if args.quick else []
    if args.only != list(DATASETS):
        parts.append(f"--only {','.join(args.only)}")
    parts += [f"--{name} {v}" for name, v in (("max-train", args.max_train), ("threads", args.threads)) if v]
    return "".join(f" {p}" for p in parts)


def profile_note(profile: Profile, args) -> str:
    """One sentence saying how this run differs from the recipes as shipped."""
    parts = [f"{k} {v:,} training rows" for k, v in profile.max_train.items() if k in args.only]
    if args.max_train:
        parts.append(f"every data set at most {args.max_train:,} training rows")
    parts += [f"{k} {v} epochs" for k, v in profile.epochs.items() if k in args.only]
    if not parts:
        return "Every recipe as shipped (`gridcnn fit recipes/NAME.toml`), on its full split."
    return "Reduced from the shipped recipes: " + "; ".join(parts) + "."


if __name__ == "__main__":
    main()
