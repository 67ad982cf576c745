"""Transfer learning on a small colour set built offline (`gridcnn.data.clipart`): SVC on pixels, from scratch,
frozen pretrained + logistic regression, fine-tuned (and fine-tuning's choices one at a time), side by side.

Run:  python -m benchmarks.transfer [--size 128] [--epochs 8] [--ablate] [--speed]
Prints markdown tables with the machine. ``--ablate`` adds one fine-tuned row per changed choice (no frozen epoch,
one rate for all stages, batch norm trained while frozen, no flip); ``--speed`` times `fit` against a hand-written
torch loop on the same network and data, alternated; ``--sizes`` times one fine-tuning epoch at 128, 160, 224 px.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gridcnn import GridCNNClassifier
from gridcnn.data import clipart
from gridcnn.data.registry import cache_dir
from gridcnn.estimator import fitting

from benchmarks.common import machine_line

ARCH = "efficientnet_lite0"


def data(size: int):
    clipart.load_clipart("test")  # builds the set into the cache on first use
    root = cache_dir() / f"clipart-v{clipart._VERSION}"
    (X, y), (Xt, yt) = clipart.load(root, "train", size), clipart.load(root, "test", size)
    return X, y, Xt, yt


def fine_tuned(epochs: int, seed: int, **kw) -> GridCNNClassifier:
    params = dict(pretrained=True, max_epochs=epochs, batch_size=32, augment_flip=True, random_state=seed)
    params.update(kw)
    return GridCNNClassifier(ARCH, **params)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def probe(X, y, Xt, yt):
    """Frozen pretrained body, pooled features, logistic regression (the issue's 72.1% baseline)."""
    from sklearn.linear_model import LogisticRegression

    net = GridCNNClassifier(ARCH, pretrained=True, max_epochs=1, random_state=0)
    net._validate_parameters()
    from gridcnn.estimator.fitting import network_spec
    from gridcnn.backbone.pretrained import load_pretrained
    spec = network_spec(net, X.shape[1:])
    model = spec.build(X.shape[1:], 2)
    load_pretrained(model, spec, ARCH, True)
    model.head = nn.Sequential(*list(model.head.children())[:-1])  # pooled features, no output layer
    model.eval()
    with torch.no_grad():
        feats = lambda A: torch.cat([model(torch.from_numpy(A[i:i + 64])) for i in range(0, len(A), 64)]).numpy()  # noqa: E731
        F, Ft = feats(X), feats(Xt)
    lr = LogisticRegression(max_iter=3000, C=1.0).fit(F, y)
    return lr.score(Ft, yt)


class _Rows(list):
    """Rows printed as they come (a long run on a loaded machine shows its figures as it goes)."""

    def append(self, row):
        super().append(row)
        name, acc, sec = row
        print(f"| {name} | {acc:.1%} | {sec:.0f} |", flush=True)


def rows(args, X, y, Xt, yt):
    from sklearn.svm import SVC

    out = _Rows()
    small = lambda A: torch.nn.functional.interpolate(torch.from_numpy(A), size=32, mode="area").flatten(1).numpy()  # noqa: E731
    (svc, sec) = timed(lambda: SVC().fit(small(X), y))
    out.append(("SVC on 32x32 RGB pixels", svc.score(small(Xt), yt), sec))
    (acc, sec) = timed(lambda: probe(X, y, Xt, yt))
    out.append((f"{ARCH} pretrained, frozen, + logistic regression", acc, sec))
    (clf, sec) = timed(lambda: fine_tuned(args.epochs, args.seed).fit(X, y))
    out.append((f"{ARCH} fine-tuned (defaults: 1 frozen epoch, body_lr_factor 0.01, flip), {args.epochs} epochs",
                clf.score(Xt, yt), sec))
    if args.ablate:
        variants = [("one rate for all stages (body_lr_factor=1)", dict(body_lr_factor=1.0), None),
                    ("no frozen epoch (freeze_epochs=0)", dict(freeze_epochs=0), None),
                    ("batch norm trained while frozen", {}, False),
                    ("body_lr_factor=0.1", dict(body_lr_factor=0.1), None),
                    ("no flip", dict(augment_flip=False), None)]
        for name, kw, keep in variants:
            old = fitting.KEEP_STATISTICS
            if keep is not None:
                fitting.KEEP_STATISTICS = keep
            try:
                (clf, sec) = timed(lambda: fine_tuned(args.epochs, args.seed, **kw).fit(X, y))
            finally:
                fitting.KEEP_STATISTICS = old
            out.append((f"fine-tuned, {name}", clf.score(Xt, yt), sec))
    if args.scratch:
        (clf, sec) = timed(lambda: GridCNNClassifier(max_epochs=args.scratch_epochs, augment_flip=True,
                                                     random_state=args.seed).fit(X, y))
        out.append((f"default network from scratch, {args.scratch_epochs} epochs", clf.score(Xt, yt), sec))
    return out


def hand_loop(X, y, epochs, seed):
    """The fine-tuning loop a user writes by hand: same network and pretrained weights, AdamW one-cycle, no freezing."""
    from gridcnn.backbone import resolve_spec
    from gridcnn.backbone.pretrained import load_pretrained

    torch.manual_seed(seed)
    spec = resolve_spec(ARCH)
    model = spec.build(X.shape[1:], int(y.max()) + 1)
    load_pretrained(model, spec, ARCH, True)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    steps = -(-len(X) // 32)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=epochs * steps)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(Xt))
        for s in range(0, len(Xt), 32):
            idx = order[s:s + 32]
            loss = loss_fn(model(Xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model


def speed(X, y, epochs, repeats):
    y_idx = np.unique(y, return_inverse=True)[1]
    ours, hand = [], []
    for _ in range(repeats):  # alternated, so a change in the machine's load hits both alike
        ours.append(timed(lambda: GridCNNClassifier(ARCH, pretrained=True, max_epochs=epochs, batch_size=32,
                                                    freeze_epochs=0, body_lr_factor=1.0, augment_shift=0,
                                                    random_state=0).fit(X, y_idx))[1])
        hand.append(timed(lambda: hand_loop(X, y_idx, epochs, 0))[1])
    return min(ours), min(hand)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ablate", action="store_true")
    ap.add_argument("--scratch", action="store_true")
    ap.add_argument("--scratch-epochs", type=int, default=30)
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--sizes", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    X, y, Xt, yt = data(args.size)
    print(machine_line())
    print(f"\nclipart: {len(X)} training and {len(Xt)} test drawings, {len(set(y))} classes, {args.size} px\n")
    print("| model | test accuracy | fit time (s) |\n|---|---|---|", flush=True)
    if args.speed:
        ours, hand = speed(X, y, 1, 2)
        print(f"\nfit {len(X) / ours:.1f} pictures/s, hand loop {len(X) / hand:.1f}: {ours / hand:.2f}x its time")
    if args.sizes:
        for s in (128, 160, 224):
            Xs = torch.nn.functional.interpolate(torch.from_numpy(X[:64]), size=s, mode="bilinear").numpy()
            ys = np.arange(64) % 8
            _, sec = timed(lambda: hand_loop(Xs, ys, 1, 0))
            print(f"{s} px: {64 / sec:.1f} pictures/s (one epoch of 64, forward and backward)", flush=True)
    rows(args, X, y, Xt, yt)
    print("\n" + machine_line())


if __name__ == "__main__":
    main()
