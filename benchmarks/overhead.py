"""GridCNNClassifier.fit against a minimal hand-written torch loop: same network, data, batches and optimiser.

Run:  python -m benchmarks.overhead [--n 10000] [--epochs 3] [--repeats 3]
Prints a markdown table row with the machine; the ratio is gridcnn's time over the hand loop's (goal <= 1.05).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch import nn

from gridcnn import GridCNNClassifier
from gridcnn.data import load_dataset

from benchmarks.common import machine_line


def hand_loop(spec, X, y, n_classes, epochs, batch_size, lr, seed):
    """The loop a user would write by hand: tensors in memory, randperm batches, AdamW, cross-entropy."""
    torch.manual_seed(seed)
    model = spec.build(X.shape[1:], n_classes)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(Xt), generator=gen)
        for start in range(0, len(Xt), batch_size):
            idx = order[start : start + batch_size]
            loss = loss_fn(model(Xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="MNIST training images")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    X, y = load_dataset("mnist", split="train")
    X, y = X[: args.n, None].astype(np.float32), y[: args.n].astype(np.int64)
    # The hand loop's training, pinned: the estimator's defaults (one-cycle, weight decay, shifts) would add work.
    kw = dict(max_epochs=args.epochs, batch_size=128, lr=1e-3, random_state=0, check_input="off",
              lr_schedule="constant", weight_decay=0.0, augment_shift=0)
    clf = GridCNNClassifier(**kw)
    spec = clf._resolve_spec()

    ours, theirs = [], []
    for _ in range(args.repeats):  # interleaved, so drift in machine load hits both alike
        t = time.perf_counter()
        GridCNNClassifier(**kw).fit(X, y)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        hand_loop(spec, X, y, 10, args.epochs, 128, 1e-3, 0)
        theirs.append(time.perf_counter() - t)
    a, b = statistics.median(ours), statistics.median(theirs)
    print("| data | epochs | GridCNNClassifier.fit (s) | hand-written loop (s) | ratio | machine |")
    print("|---|---|---|---|---|---|")
    print(f"| MNIST {args.n} x 28x28, simple preset | {args.epochs} | {a:.2f} | {b:.2f} | {a / b:.3f} | {machine_line()} |")


if __name__ == "__main__":
    main()
