"""Run folders: train a recipe and write what it made (model, recipe, metrics, history, plots); read them back.

Nothing here prints; the CLI shows progress through the ``on_stage`` hook and the estimator's own progress bar.
Files are written as soon as they exist (the recipe first; after every epoch a checkpoint to resume from, the model
and the history, by the `RunCheckpoint` hook the fit is given; then the metrics and plots), so a run that is
interrupted or fails keeps what it wrote before. Under torchrun every rank trains and rank 0 alone writes.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from gridcnn.workflow import plots
from gridcnn.training.distributed import is_main
from gridcnn.estimator.pipeline import split_pipeline
from gridcnn.workflow.run_folder import RunFolder, claim_run_dir
from gridcnn.workflow.recipes import Recipe, build_pipeline, load_split, planned_recipe_text, portable
from gridcnn.modelfile.codec import versions, write_tmp
from gridcnn.workflow.run_checkpoint import CHECKPOINT, RunCheckpoint


def default_run_dir(recipe: Recipe) -> Path:
    """``[output] dir`` of the recipe, else ``runs/<recipe>-<timestamp>``."""
    if recipe.output.get("dir"):
        return Path(recipe.output["dir"])
    return Path("runs") / f"{recipe.stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def compute_metrics(y_true, y_pred, labels) -> dict:
    """Accuracy, per-class precision / recall / F1 / support and the confusion matrix, JSON-ready."""
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "n_samples": int(len(y_true)),
        "per_class": {
            str(c): {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, c in enumerate(labels)
        },
        "macro_f1": float(np.mean(f)),
        "labels": [str(c) for c in labels],
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def top_errors(proba, y_true, classes, inputs, k: int = 9) -> list[dict]:
    """The ``k`` misclassified examples with the most confident predictions (fastai's top losses, wrong ones only):
    index, true and predicted label, probability of the prediction and of the true class, and the input (its
    file path or text when it has one)."""
    proba = np.asarray(proba)
    true_idx = np.searchsorted(classes, y_true)
    pred_idx = proba.argmax(1)
    wrong = np.flatnonzero(pred_idx != true_idx)
    wrong = wrong[np.argsort(-proba[wrong, pred_idx[wrong]], kind="stable")][:k]
    out = []
    for i in wrong:
        item = inputs[i] if inputs is not None and isinstance(inputs[i], str) else None
        out.append({"index": int(i), "true": str(classes[true_idx[i]]), "predicted": str(classes[pred_idx[i]]),
                    "probability": float(proba[i, pred_idx[i]]), "true_probability": float(proba[i, true_idx[i]]),
                    **({"input": item[:300]} if item is not None else {})})
    return out


def fit_recipe(recipe: Recipe, out=None, *, device: str | None = None, verbose: int = 1, on_stage=None,
               resume: bool = False, overwrite: bool = False, time_limit: float | None = None) -> dict:
    """Train what ``recipe`` describes and write the run folder.

    Parameters
    ----------
    recipe : Recipe
        A recipe from `gridcnn.workflow.recipes.read_recipe`.
    out : str, Path or RunFolder, default=None
        The run folder (defaults to `default_run_dir`), or one claimed already with `claim_run_dir`. A folder that
        holds a run is refused unless ``resume`` or ``overwrite``; the folder is locked while the fit writes it.
    device : str, default=None
        Overrides the recipe's ``estimator.device``.
    verbose : int, default=1
        Passed to the estimator (1 shows its progress bar).
    on_stage : callable, default=None
        Called with a short text as each stage starts ("Loading data", ...).
    resume : bool, default=False
        Go on from the run folder's checkpoint (its last finished epoch) instead of starting again.
    overwrite : bool, default=False
        Replace the run that ``out`` holds (its files only) instead of refusing the folder.
    time_limit : float, default=None
        Seconds of training: the first epochs are timed and the fit is planned as the epochs that fit, its
        learning-rate schedule laid over them (``metrics["time_limit"]`` says what was planned; should an epoch
        still run long, the fit stops after the last that fits and ``metrics["stopped"]`` says so). The run's
        recipe.toml then records the epochs planned, so that fitting it again repeats the run.

    Returns
    -------
    result : dict
        ``run_dir`` and the metrics written to ``metrics.json`` (only ``run_dir`` on ranks other than 0).
    """
    main = is_main()
    if not isinstance(out, RunFolder):
        from gridcnn.training.steps import resolve_device

        where = resolve_device(device or recipe.estimator.get("device", "auto"))
        out = claim_run_dir(out or default_run_dir(recipe), resume=resume, overwrite=overwrite, device=where)
    with out as run:
        return _fit_in(recipe, run.path, main, device, verbose, on_stage, resume, time_limit)


def _fit_in(recipe: Recipe, out: Path, main: bool, device, verbose, on_stage, resume, time_limit) -> dict:
    stage = on_stage if on_stage and main else (lambda text: None)
    if main and not resume:
        recipe = portable(recipe)
        (out / "recipe.toml").write_text(recipe.to_toml())
    timings = {}

    stage("Loading data")
    t = time.perf_counter()
    X_train, y_train, X_test, y_test = load_split(recipe)
    timings["load_s"] = time.perf_counter() - t

    # The run folder's checkpoint is the one the fit writes (RunCheckpoint below), not one a recipe names.
    overrides = {"verbose": verbose if main else 0, "checkpoint": None}
    if device:
        overrides["device"] = device
    model = build_pipeline(recipe, **overrides)
    est = split_pipeline(model)[1]
    data = _grids(recipe, model, X_train, y_train, X_test, y_test, device, verbose if main else 0, stage, timings)

    hooks = [RunCheckpoint(out, model)] if main else []  # rank 0 alone writes
    limit = None
    if time_limit is not None:
        from gridcnn.training.hooks.time_limit import TimeLimit

        limit = TimeLimit(time_limit)
        hooks.append(limit)
    stage(f"{'Resuming' if resume else 'Training'} on {len(data.y_train)} grids of shape {data.grid_shape()}")
    t = time.perf_counter()
    est.fit(data.train, data.y_train, resume_from=out / CHECKPOINT if resume else None, hooks=hooks)
    stopped = limit is not None and limit.stopped_after is not None
    if limit is not None and limit.planned is not None:
        stage(f"Time limit {time_limit:g} s: epochs took {limit.epoch_s:.2g} s, so the fit was planned as "
              f"{limit.planned} epoch{'s' * (limit.planned != 1)} instead of {limit.asked}, its learning-rate schedule "
              "laid over them")
    if stopped:
        stage(f"Time limit {time_limit:g} s: stopped after epoch {est.n_iter_} of {limit.planned or est.max_epochs_} "
              "(the next would not have finished in time)")
    timings["fit_s"] = time.perf_counter() - t
    if main and limit is not None and not resume:  # so that gridcnn fit RUN/recipe.toml repeats this run
        (out / "recipe.toml").write_text(planned_recipe_text(recipe, time_limit, limit.asked, limit.planned,
                                                             int(est.n_iter_)))
    if not main:
        return {"run_dir": str(out)}

    stage("Evaluating on the test split")
    t = time.perf_counter()
    proba = est.predict_proba(data.test)
    y_test = data.test_labels()
    timings["predict_s"] = time.perf_counter() - t
    metrics = compute_metrics(y_test, est.classes_[proba.argmax(1)], est.classes_)
    metrics.update(
        n_train=int(len(data.y_train)), grid_shape=list(est.input_shape_), epochs=int(est.n_iter_),
        device=str(est.device_), timings=timings, versions={**versions(), "machine": platform.platform()},
        recipe=recipe.source,
        top_errors=top_errors(proba, y_test, est.classes_, X_test if _named(X_test) else None),
    )
    if limit is not None:
        metrics["time_limit"] = {"seconds": time_limit, "asked_epochs": int(limit.asked or est.max_epochs_),
                                 "planned_epochs": int(limit.planned or limit.asked or est.max_epochs_),
                                 "epoch_s": limit.epoch_s, "epochs": int(est.n_iter_)}
    if stopped:
        metrics["stopped"] = {"reason": "time limit", "time_limit_s": time_limit, "epochs": int(est.n_iter_),
                              "planned_epochs": int(limit.planned or est.max_epochs_)}
    write_tmp(out / "metrics.json", json.dumps(metrics, indent=2).encode()).replace(out / "metrics.json")

    stage("Drawing plots")
    _draw(est, data, metrics, out, stage, proba, split_pipeline(model)[0])
    return {"run_dir": str(out), **metrics}


@dataclass
class _Grids:
    """The recipe's split as the estimator takes it: grids in memory (its adapter applied), or, ``streamed``,
    `StreamedGrids` of the files, decoded batch by batch (the one place a run tells the two apart)."""

    train: object
    y_train: object
    test: object
    y_test: object
    X_test: object  # the test inputs as read: files or texts name the top errors
    streamed: bool

    def grid_shape(self) -> tuple:
        return tuple(self.train.grid_shape_ if self.streamed else np.shape(self.train)[1:])

    def test_labels(self) -> np.ndarray:
        """The labels of the test rows that have a prediction (files the adapter skipped, on_error="skip", have
        none)."""
        return np.asarray(self.y_test)[self.test.kept_] if self.streamed else np.asarray(self.y_test)

    def first_test_grid(self):
        return next(self.test.read([self.test.rows()[:1]]))[1] if self.streamed else self.test[:1]


def _grids(recipe, model, X_train, y_train, X_test, y_test, device, verbose: int, stage, timings) -> _Grids:
    """Turn the split into what the estimator trains on: streamed from the files when the recipe asks or they do
    not fit in memory (building the grid cache now, timed apart), else through the adapter."""
    from gridcnn.streaming import should_stream

    stream = should_stream(recipe.data.get("stream", "auto"), model, X_train)
    stage("Turning data into grids" + (" as they are read (streamed from the files)" if stream else ""))
    t = time.perf_counter()
    if stream:  # decoded batch by batch during training; files left out take their labels along there
        G_train, G_test = _streams(recipe, model, X_train, X_test, verbose)
    else:
        G_train, G_test = X_train, X_test
        for adapter in split_pipeline(model)[0]:  # a recipe has at most one; inputs it leaves out (on_error="skip")
            if device and "device" in adapter.get_params():  # take their labels along
                adapter.set_params(device=device)
            G_train = adapter.fit_transform(G_train, y_train)
            y_train = adapter.drop_skipped(y_train)
            G_test = adapter.transform(G_test)
            y_test = adapter.drop_skipped(y_test)
    timings["transform_s"] = time.perf_counter() - t
    if stream and G_train.cache is not False:
        stage(f"Decoding {len(X_train)} files into the grid cache (once; later epochs and runs read it)")
        t = time.perf_counter()
        _prepare_stream(G_train, device or split_pipeline(model)[1].device)
        timings["decode_s"] = time.perf_counter() - t
    return _Grids(G_train, y_train, G_test, y_test, X_test, stream)


def _draw(est, data: _Grids, metrics: dict, out: Path, stage, proba, adapters) -> None:
    """The run's pictures: training curves, confusion matrix, filters, feature maps and (in memory) top errors and
    where the network looked."""
    plots.plot_history(est.history_, out / "training_curves.png")
    undrawable = plots.plot_confusion(metrics["confusion_matrix"], metrics["labels"], out / "confusion_matrix.png")
    if undrawable:
        stage(f"No installed font draws the class names {undrawable[:3]}: they show as boxes in confusion_matrix.png "
              "(metrics.json has them right). Install a font that has them, such as Noto Sans CJK, and draw again.")
    modality = getattr(est, "modality_", None) or getattr(adapters[0] if adapters else None, "modality", "image")
    texts = list(data.X_test) if modality == "text" and _named(data.X_test) else None
    tokens = None
    if texts is not None and adapters and hasattr(adapters[0], "tokens"):
        tokens = adapters[0].tokens(texts)
    y_test, predicted = data.test_labels(), est.classes_[np.asarray(proba).argmax(1)]
    test = None if data.streamed else data.test  # a stream's grids are decoded batch by batch, not indexable
    plots.plot_filters(est.model_, out / "filters.png", modality=modality, grids=test, tokens=tokens)
    example = np.asarray(data.first_test_grid(), dtype=np.float32).reshape(est.input_shape_)
    plots.plot_feature_maps(est.model_, example, out / "feature_maps.png", modality=modality, true=y_test[0],
                            predicted=predicted[0], probability=float(np.max(proba[0])),
                            text=texts[0] if texts else None, tokens=tokens[0] if tokens else None)
    if test is None:  # metrics.json still lists the top errors
        return
    plots.plot_top_errors(metrics["top_errors"], test, est.input_shape_, modality, out / "errors.png", texts=texts)
    # A few examples the model got right, one per class first, and its most confident mistakes beside them.
    right = np.flatnonzero(predicted == y_test)
    first = [right[np.flatnonzero(y_test[right] == c)[0]] for c in est.classes_ if np.any(y_test[right] == c)]
    shown = (first + [i for i in right if i not in first])[:4] + [e["index"] for e in metrics["top_errors"][:2]]
    shown = np.asarray(shown[:6], dtype=int)
    if not len(shown):
        return
    plots.plot_explain(est.model_, np.asarray(test[shown], dtype=np.float32).reshape(-1, *est.input_shape_),
                       out / "explain.png", modality=modality, classes=est.classes_, y_true=y_test[shown],
                       texts=[texts[i] for i in shown] if texts else None,
                       tokens=[tokens[i] for i in shown] if tokens else None)


def _named(X) -> bool:
    """Are X's items files or texts (which metrics.json can name), rather than numbers?"""
    return isinstance(X, list) or (isinstance(X, np.ndarray) and X.ndim == 1 and X.dtype.kind in "UO")


def _streams(recipe: Recipe, model, X_train, X_test, verbose: int):
    """The recipe's training and test files as `StreamedGrids`, the adapter fitted on a seeded sample of them."""
    from gridcnn.streaming import StreamedGrids, fit_adapter

    data = recipe.data
    adapter = fit_adapter(split_pipeline(model)[0][0], X_train, random_state=data.get("random_state", 0))
    workers = {"num_workers": data.get("num_workers", 2), "threads": data.get("threads", False)}
    train = StreamedGrids(X_train, adapter, cache=data.get("cache", True), verbose=verbose, **workers)
    return train, StreamedGrids(X_test, adapter, cache=False, **workers)


def _prepare_stream(stream, device: str) -> None:
    """Build (or open) a stream's cache now, so the first decoding pass is timed and shown apart from training;
    under torchrun the ranks split the files between them."""
    from gridcnn.training.distributed import ensure_process_group, world
    from gridcnn.training.steps import resolve_device

    rank, size, _ = world()
    if size > 1:
        ensure_process_group(resolve_device(device))
    stream.prepare(rank, size)


def evaluate_model(model, X, y) -> dict:
    """Metrics of a loaded model (estimator or pipeline) on raw inputs X with labels y."""
    from gridcnn.streaming import file_adapter, is_file_list, predict_files

    classes = split_pipeline(model)[1].classes_
    if file_adapter(model) is not None and is_file_list(X):  # decoded batch by batch, not all in memory
        proba, kept = predict_files(model, list(X))
        keep = np.isin(np.asarray([str(p) for p in X]), kept)
        return compute_metrics(np.asarray(y)[keep], classes[proba.argmax(axis=1)], classes)
    return compute_metrics(np.asarray(y), model.predict(X), classes)
