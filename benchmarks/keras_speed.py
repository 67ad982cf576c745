"""The guides' Keras network, four trainers: GridCNNClassifier, Keras 3 (torch backend), skorch and a hand loop.

The network of the CNN guides this project grew from: Conv2D(6, 2) on 28x28x1, ReLU, MaxPool2D(2), Flatten,
Dense(10), softmax; Adam (lr 1e-3), batch 32, shuffled batches, no validation. Every trainer sees the same MNIST
rows (scaled to [-0.5, 0.5] as the guides do) for the same epochs; the fits run interleaved, a different trainer
first each round, and the medians are compared. Keras gets ``metrics=["accuracy"]`` as in the guides (the other
three also count training accuracy), ``verbose=0``, and channels-last input, its native layout.

    python -m benchmarks.keras_speed                  # 10,000 rows x 2 epochs, 3 rounds
    python -m benchmarks.keras_speed --n 2000 --repeats 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported anywhere

import numpy as np
import torch
from torch import nn

from gridcnn import GridCNNClassifier
from gridcnn.training.loop import Hook
from gridcnn.data import load_dataset

from benchmarks.common import machine_line, run_before
from benchmarks.overhead import hand_loop

# One block (a one-item list sets the count), no batch norm or dropout: exactly the Keras model below.
NETWORK = dict(filters=[6], kernel_size=2, padding="valid", pool="max", pool_size=2, batch_norm=False, hidden=(),
               dropout=0.0)
TRAINERS = {"gridcnn": "GridCNNClassifier.fit", "keras": "Keras 3 fit (torch backend)",
            "skorch": "skorch NeuralNetClassifier", "hand": "hand-written loop",
            "gridcnn-glorot": "GridCNNClassifier.fit, Keras' initial weights",
            "before": "GridCNNClassifier.fit, an earlier copy (--before)"}


# Keras' training, pinned: constant Adam 1e-3, no weight decay, no augmentation, no validation split. Left to the
# estimator's defaults (one-cycle, decay 0.05 -- an L2 term under plain Adam -- random shifts) the comparison
# measured those instead: 87.9% against Keras' 94.6% on 60,000 rows.
TRAINING = dict(optimizer="adam", lr=1e-3, lr_schedule="constant", weight_decay=0.0, augment_shift=0,
                validation_fraction=None, batch_size=32)


def estimator(epochs: int, seed: int) -> GridCNNClassifier:
    return GridCNNClassifier(**NETWORK, **TRAINING, max_epochs=epochs, device="cpu", check_input="off",
                             random_state=seed)


def fit_gridcnn(X, y, epochs, seed):
    clf = estimator(epochs, seed).fit(X, y)
    return lambda Xt: clf.predict(Xt)


class GlorotInit(Hook):
    """Keras' initialisation (Glorot-uniform kernels, zero biases) in place of torch's Kaiming-uniform, drawn before
    the first step: the same network then starts where Keras' does, and only the training differs."""

    def on_fit_start(self, fit):
        with torch.no_grad():
            for m in fit.model.modules():
                if isinstance(m, (nn.Conv2d, nn.Conv1d, nn.Linear)):
                    nn.init.xavier_uniform_(m.weight)
                    nn.init.zeros_(m.bias)


def fit_gridcnn_glorot(X, y, epochs, seed):
    clf = estimator(epochs, seed).set_params(callbacks=[GlorotInit()]).fit(X, y)
    return lambda Xt: clf.predict(Xt)


def fit_keras(X, y, epochs, seed):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((28, 28, 1)), keras.layers.Conv2D(6, 2, activation="relu"), keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(X.transpose(0, 2, 3, 1), y, batch_size=32, epochs=epochs, verbose=0, shuffle=True)
    return lambda Xt: model.predict(Xt.transpose(0, 2, 3, 1), batch_size=1024, verbose=0).argmax(1)


def _module(X):
    return estimator(1, 0)._resolve_spec().build(X.shape[1:], 10)


def fit_skorch(X, y, epochs, seed):
    from skorch import NeuralNetClassifier

    torch.manual_seed(seed)
    net = NeuralNetClassifier(_module(X), criterion=nn.CrossEntropyLoss, optimizer=torch.optim.Adam, lr=1e-3,
                              max_epochs=epochs, batch_size=32, iterator_train__shuffle=True, train_split=None,
                              callbacks="disable", verbose=0, device="cpu")
    net.fit(torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y)), None)
    return lambda Xt: net.predict(Xt)


def fit_hand(X, y, epochs, seed):
    # benchmarks.overhead's loop on this network at batch 32 (AdamW without decay makes Adam's update).
    model = hand_loop(estimator(epochs, seed)._resolve_spec(), X, y, 10, epochs, 32, 1e-3, seed)

    @torch.no_grad()
    def predict(Xt):
        model.eval()
        return model(torch.from_numpy(Xt)).argmax(1).numpy()

    return predict


FITS = {"gridcnn": fit_gridcnn, "keras": fit_keras, "skorch": fit_skorch, "hand": fit_hand,
        "gridcnn-glorot": fit_gridcnn_glorot}

_BEFORE = """
import json, time, torch
from benchmarks import keras_speed as k
torch.set_num_threads({threads})
X, y, Xt, yt = k.data({n})
k.fit_gridcnn(X[:64], y[:64], 1, {seed})  # untimed, as the others' warm-up fit
start = time.perf_counter()
predict = k.fit_gridcnn(X, y, {epochs}, {seed})
seconds = time.perf_counter() - start
print(json.dumps([seconds, float((predict(Xt) == yt).mean())]))
"""


def before_fit(before: str, n: int, epochs: int, seed: int) -> tuple[float, float]:
    """(fit seconds, test accuracy) of GridCNNClassifier from another copy of the package (``before``: the folder
    holding its ``gridcnn``), in a subprocess; the fit is timed inside it after a small warm-up fit, so start-up,
    data loading and first-call set-up are not."""
    code = _BEFORE.format(threads=torch.get_num_threads(), n=n, epochs=epochs, seed=seed)
    seconds, accuracy = run_before(before, code)
    return seconds, accuracy


def available() -> list[str]:
    """The trainers whose packages import here (keras and skorch are in the ``bench`` extra)."""
    names = ["gridcnn"]
    for name, module in (("keras", "keras"), ("skorch", "skorch")):
        try:
            __import__(module)
            names.append(name)
        except ImportError:
            pass
    return names + ["hand"]


def data(n: int):
    X, y = load_dataset("mnist", split="train")
    Xt, yt = load_dataset("mnist", split="test")
    scale = lambda a: np.ascontiguousarray(a.reshape(-1, 1, 28, 28), dtype=np.float32) - 0.5  # loader gives [0, 1]
    return scale(X[:n]), y[:n].astype(np.int64), scale(Xt), yt.astype(np.int64)


def compare(n=10_000, epochs=2, repeats=3, seed=0, names=None, before=None) -> dict:
    """Median fit seconds and test accuracy of each trainer, interleaved; ratios of gridcnn to each other.

    ``before``: a folder holding an earlier copy of ``gridcnn``, timed as the trainer "before" (in a subprocess).
    """
    X, y, Xt, yt = data(n)
    names = names or available()
    for name in names:  # an untimed small fit each: imports, first-call set-up
        FITS[name](X[:64], y[:64], 1, seed)
    if before:
        names = names + ["before"]
    seconds, accuracy = {k: [] for k in names}, {k: [] for k in names}
    for r in range(repeats):  # round r trains every trainer with seed + r: accuracies are compared over seeds
        for name in names[r % len(names):] + names[: r % len(names)]:
            if name == "before":
                t, acc = before_fit(before, n, epochs, seed + r)
                seconds[name].append(t)
                accuracy[name].append(acc)
                continue
            start = time.perf_counter()
            predict = FITS[name](X, y, epochs, seed + r)
            seconds[name].append(time.perf_counter() - start)
            accuracy[name].append(float((np.asarray(predict(Xt)) == yt).mean()))
    median = {k: statistics.median(v) for k, v in seconds.items()}
    return {"n_train": n, "epochs": epochs, "repeats": repeats, "threads": torch.get_num_threads(),
            "seconds": seconds, "median_s": median, "accuracies": accuracy,
            "accuracy": {k: statistics.mean(v) for k, v in accuracy.items()},
            "ratios": {f"gridcnn/{k}": median["gridcnn"] / median[k] for k in names if k != "gridcnn"}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="MNIST training rows (default 10,000)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--trainers", nargs="+", choices=sorted(FITS), help="only these (default: all installed)")
    parser.add_argument("--before", help="folder holding an earlier gridcnn package, timed alongside "
                        "(e.g. git archive main gridcnn | tar -x -C /tmp/before)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    r = compare(args.n, args.epochs, args.repeats, names=args.trainers, before=args.before)
    print(f"Machine: {machine_line()}")
    print(f"{args.n} rows x {args.epochs} epochs, batch 32, median of {args.repeats} interleaved fits (seeds 0-"
          f"{args.repeats - 1}), {r['threads']} torch threads")
    print("| trainer | fit (s) | test accuracy, per seed | mean | GridCNNClassifier / this |\n|---|---|---|---|---|")
    for k, t in r["median_s"].items():
        ratio = "" if k == "gridcnn" else f"{r['ratios'][f'gridcnn/{k}']:.3f}"
        seeds = ", ".join(f"{100 * a:.2f}" for a in r["accuracies"][k])
        print(f"| {TRAINERS[k]} | {t:.2f} | {seeds} | {100 * r['accuracy'][k]:.2f}% | {ratio} |")


if __name__ == "__main__":
    main()
