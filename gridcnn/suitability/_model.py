"""The model stage of the suitability check: does the order of an axis help a small CNN beyond an order-blind MLP?

A small CNN is cross-validated on the grids as they are, on the grids with one axis shuffled, and an MLP of similar
size on the flattened cells (blind to any order). A shuffle is one order for every sample, drawn like the locality
stage's least favourable null: it keeps that stage's contiguous groups of related cells together (plain random
orders where there are none). Adjacent related columns help a CNN a little (its kernels average them), so only an
order that beats this grouped shuffle is order a grid has. The axis is ordered when the CNN as is beats both the
shuffled CNN and the MLP. Comparisons are paired over the out-of-fold predictions of the same samples (a
McNemar-style z test on the per-sample differences in correctness), which holds the trained networks fixed;
``min_gain`` guards against the optimism that brings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from gridcnn.suitability._stats import grouped_orders, random_orders

# Optimiser steps per network: enough for these small networks to converge on a few thousand samples, and it
# keeps one fit to about a second on a laptop core whatever the number of samples.
TRAIN_STEPS = 300
BATCH_SIZE = 64
LEARNING_RATE = 3e-3
# Axes longer than this are average-pooled first, so big images cost what a 64 x 64 one does.
MAX_AXIS = 64


@dataclass
class ModelResult:
    """Cross-validated accuracies of the model stage (all out-of-fold, over ``n_samples`` samples)."""

    n_samples: int
    cv: int
    cnn_accuracy: float
    mlp_accuracy: float
    mlp_gain: float  # CNN minus MLP
    mlp_p_value: float
    shuffled_accuracy: dict = field(default_factory=dict)  # axis name -> CNN accuracy with that axis shuffled
    shuffled_gain: dict = field(default_factory=dict)  # axis name -> CNN (as is) minus CNN (shuffled)
    shuffled_p_value: dict = field(default_factory=dict)  # axis name -> paired p-value of that gain


def paired_p_value(better: np.ndarray, worse: np.ndarray) -> float:
    """One-sided p-value that ``better`` (per-sample correctness) beats ``worse``, from a z test on the differences."""
    diff = np.asarray(better, float) - np.asarray(worse, float)
    sd = diff.std(ddof=1) if len(diff) > 1 else 0.0
    if sd == 0:
        return 0.0 if diff.mean() > 0 else 1.0
    z = diff.mean() / (sd / math.sqrt(len(diff)))
    return 0.5 * math.erfc(z / math.sqrt(2))


def _cnn(channels, height, width, n_classes):
    from torch import nn

    shrink = (max(1, math.ceil(height / MAX_AXIS)), max(1, math.ceil(width / MAX_AXIS)))
    kernel = (3 if height >= 3 else 1, 3 if width >= 3 else 1)
    layers = [nn.AvgPool2d(shrink)] if shrink != (1, 1) else []
    h, w = height // shrink[0], width // shrink[1]
    for filters_in, filters_out in ((channels, 16), (16, 32)):
        pool = (2 if h >= 4 else 1, 2 if w >= 4 else 1)
        layers += [nn.Conv2d(filters_in, filters_out, kernel, padding="same"), nn.ReLU(), nn.MaxPool2d(pool)]
        h, w = h // pool[0], w // pool[1]
    return nn.Sequential(*layers, nn.Flatten(), nn.Dropout(0.2), nn.Linear(32 * h * w, n_classes))


def _mlp(channels, height, width, n_classes):
    from torch import nn

    return nn.Sequential(nn.Flatten(), nn.Linear(channels * height * width, 128), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(128, n_classes))


def _fit_predict(build, X_train, y_train, X_test, n_classes, seed):
    """Train a fresh network on standardised cells and return its predictions for ``X_test``."""
    import torch
    from torch import nn

    mean, sd = X_train.mean(axis=0), X_train.std(axis=0) + 1e-6
    X_train = torch.as_tensor((X_train - mean) / sd, dtype=torch.float32)
    X_test = torch.as_tensor((X_test - mean) / sd, dtype=torch.float32)
    y_train = torch.as_tensor(y_train)
    # Forking keeps the caller's global torch seed untouched while making the fit reproducible.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build(*X_train.shape[1:], n_classes)
        optimiser = torch.optim.AdamW(net.parameters(), lr=LEARNING_RATE, weight_decay=1e-4)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, LEARNING_RATE, total_steps=TRAIN_STEPS)
        batch = min(BATCH_SIZE, len(X_train))
        net.train()
        step = 0
        while step < TRAIN_STEPS:
            order = torch.randperm(len(X_train))
            for start in range(0, len(order) - batch + 1, batch):
                idx = order[start:start + batch]
                optimiser.zero_grad()
                nn.functional.cross_entropy(net(X_train[idx]), y_train[idx]).backward()
                optimiser.step()
                schedule.step()
                step += 1
                if step == TRAIN_STEPS:
                    break
        net.eval()
        with torch.no_grad():
            return net(X_test).argmax(dim=1).numpy()


def model_test(grids: np.ndarray, codes: np.ndarray, axes: dict, rng: np.random.Generator, *, cv: int,
               n_shuffles: int, max_samples: int) -> ModelResult:
    """Cross-validate the CNN (as is and with each axis shuffled) and the MLP on (n, C, H, W) ``grids``.

    ``codes`` are integer class labels 0..k-1 with at least ``cv`` samples in every class; ``axes`` maps the name
    of each axis to test to (its index in ``grids``, its group labels or None): positions in a group stay together
    when the axis is shuffled.
    """
    seed = int(rng.integers(2**31 - 1))
    if len(grids) > max_samples:
        keep, _ = train_test_split(np.arange(len(grids)), train_size=max_samples, stratify=codes, random_state=seed)
        grids, codes = grids[np.sort(keep)], codes[np.sort(keep)]
    grids = grids.astype(np.float32, copy=False)
    n_classes = int(codes.max()) + 1
    folds = list(StratifiedKFold(cv, shuffle=True, random_state=seed).split(np.zeros(len(codes)), codes))

    def correct(build, data):
        hits = np.zeros(len(codes))
        for i, (train, test) in enumerate(folds):
            hits[test] = _fit_predict(build, data[train], codes[train], data[test], n_classes, seed + i) == codes[test]
        return hits

    import torch

    # Networks this small run several times faster on one thread than on many (each op is too short to share),
    # most of all on a busy machine; the caller's setting is restored afterwards.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cnn = correct(_cnn, grids)
        mlp = correct(_mlp, grids)
        result = ModelResult(len(codes), cv, float(cnn.mean()), float(mlp.mean()), float(cnn.mean() - mlp.mean()),
                             paired_p_value(cnn, mlp))
        for name, (axis, groups) in axes.items():
            length = grids.shape[axis]
            if groups is None:
                orders = random_orders(rng, n_shuffles, length)
            else:
                orders = grouped_orders(rng, n_shuffles, groups)
            shuffled = np.mean([correct(_cnn, np.take(grids, order, axis=axis)) for order in orders], axis=0)
            result.shuffled_accuracy[name] = float(shuffled.mean())
            result.shuffled_gain[name] = float(cnn.mean() - shuffled.mean())
            result.shuffled_p_value[name] = paired_p_value(cnn, shuffled)
    finally:
        torch.set_num_threads(threads)
    return result
