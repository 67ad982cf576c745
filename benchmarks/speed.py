"""Training speed: one torch module and one set of grids, trained by GridCNNClassifier, by skorch and by hand.

All three build the network from the same `BackboneSpec` with the same seed and train it with the same batch size,
epochs, AdamW (lr 1e-3, no weight decay), constant rate, shuffled batches and no validation split. skorch gets the
settings its documentation's "Performance" page recommends: ``verbose=0``, ``callbacks="disable"``,
``train_split=None`` and a ``TensorDataset`` instead of arrays. The three fits run interleaved (a different one
first on each repeat), so load from other processes falls on all of them alike; the medians are compared.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
from sklearn.base import clone
from torch import nn

from benchmarks.overhead import hand_loop

TRAINERS = {"gridcnn": "GridCNNClassifier.fit", "skorch": "skorch NeuralNetClassifier", "hand": "hand-written loop"}
SKORCH_MISSING = 'skorch not installed (pip install -c constraints.txt -e ".[bench]")'


def skorch_version() -> str | None:
    """skorch's version, or None when it is not installed (it is only in the ``bench`` extra)."""
    try:
        import skorch
    except ImportError:
        return None
    return skorch.__version__


def fit_gridcnn(estimator, X, y, seed):
    """Train ``estimator`` (a configured GridCNNClassifier) and return its network."""
    return estimator.set_params(random_state=seed).fit(X, y).model_


def fit_skorch(spec, X, y, n_classes, epochs, batch_size, lr, seed):
    """Train the spec's module with skorch's documented fast settings and return the module."""
    from skorch import NeuralNetClassifier

    torch.manual_seed(seed)
    net = NeuralNetClassifier(
        spec.build(X.shape[1:], n_classes),
        criterion=nn.CrossEntropyLoss,  # the module returns logits, as GridCNNClassifier's does
        optimizer=torch.optim.AdamW,
        lr=lr,
        optimizer__weight_decay=0.0,  # torch's AdamW defaults to 0.01; the other two use 0
        max_epochs=epochs,
        batch_size=batch_size,
        iterator_train__shuffle=True,  # skorch does not shuffle by default; the other two do
        train_split=None,
        callbacks="disable",
        verbose=0,
        device="cpu",
    )
    net.fit(torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y)), None)
    return net.module_


@torch.no_grad()
def test_accuracy(model, X, y_idx, batch_size=512) -> float:
    """Accuracy of a trained module on grids X against label indices (evaluation mode, in batches)."""
    model.eval()
    X = np.ascontiguousarray(X, dtype=np.float32)
    logits = torch.cat([model(torch.from_numpy(X[i : i + batch_size])) for i in range(0, len(X), batch_size)])
    return float((logits.argmax(1).numpy() == y_idx).mean())


def compare(estimator, X_train, y_train, X_test, y_test, *, epochs, batch_size=128, lr=1e-3, repeats=3, seed=0):
    """Time the three trainers on the same grids and module.

    Parameters
    ----------
    estimator : GridCNNClassifier
        Gives the network (its architecture parameters); its training parameters are replaced by the ones below.
    X_train, X_test : ndarray of shape (n, C, H, W), float32
        Grids.
    y_train, y_test : array-like of shape (n,)
        Labels.
    epochs, batch_size, lr : int, int, float
        Training settings shared by the three.
    repeats : int, default=3
        Timed fits of each trainer; the median is reported.
    seed : int, default=0
        Seed of the weights and the batch order.

    Returns
    -------
    result : dict
        ``seconds`` (trainer -> list of times), ``median_s``, ``accuracy`` (of each trainer's last fit on the test
        grids), the ratios ``gridcnn/hand``, ``skorch/hand`` and ``gridcnn/skorch``, and ``skorch`` (its version,
        or a note saying it is not installed).
    """
    classes, y_idx = np.unique(y_train, return_inverse=True)
    y_idx = y_idx.astype(np.int64)
    X_train = np.ascontiguousarray(X_train, dtype=np.float32)
    est = clone(estimator).set_params(
        max_epochs=epochs, batch_size=batch_size, lr=lr, optimizer="adamw", weight_decay=0.0, lr_schedule="constant",
        augment_shift=0, validation_fraction=None, early_stopping=False, callbacks=None, verbose=0, device="cpu",
        check_input="off", warm_start=False,
    )
    spec = est._resolve_spec()
    fits = {
        "gridcnn": lambda X, y, s: fit_gridcnn(est, X, y, s),
        "skorch": lambda X, y, s: fit_skorch(spec, X, y, len(classes), epochs, batch_size, lr, s),
        "hand": lambda X, y, s: hand_loop(spec, X, y, len(classes), epochs, batch_size, lr, s),
    }
    skorch = skorch_version()
    if skorch is None:
        del fits["skorch"]
    names = list(fits)
    for name in names:  # one small untimed fit each, so no trainer pays for first-call set-up in the timings
        fits[name](X_train[: 2 * batch_size], y_idx[: 2 * batch_size], seed)

    seconds = {name: [] for name in names}
    models = {}
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:  # rotate who goes first
            start = time.perf_counter()
            models[name] = fits[name](X_train, y_idx, seed)
            seconds[name].append(time.perf_counter() - start)
    median = {name: statistics.median(t) for name, t in seconds.items()}
    y_test_idx = np.searchsorted(classes, np.asarray(y_test))
    accuracy = {name: test_accuracy(m, X_test, y_test_idx) for name, m in models.items()}
    ratios = {"gridcnn/hand": median["gridcnn"] / median["hand"]}
    if "skorch" in median:
        ratios.update({"skorch/hand": median["skorch"] / median["hand"],
                       "gridcnn/skorch": median["gridcnn"] / median["skorch"]})
    return {"n_train": len(y_idx), "grid_shape": list(X_train.shape[1:]), "epochs": epochs, "batch_size": batch_size,
            "repeats": repeats, "seconds": seconds, "median_s": median, "accuracy": accuracy, "ratios": ratios,
            "skorch": skorch or SKORCH_MISSING}
