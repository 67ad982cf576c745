"""Transfer learning on a small colour set built offline (`gridcnn.data.clipart`): SVC on pixels, from scratch,
frozen pretrained + logistic regression, fine-tuned (and fine-tuning's choices one at a time), side by side.

Run:  python -m benchmarks.transfer [--size 128] [--epochs 8] [--ablate] [--speed] [--aspect] [--scratch]
Prints markdown tables with the machine. ``--ablate`` adds one fine-tuned row per changed choice (fastai's frozen
epoch instead of the probe, no probe, batch norm trained, one rate for all stages, a lower rate, no flip); ``--aspect``
probes the drawings' original files squashed, cropped and padded; ``--speed`` times `fit` against a hand-written
torch loop on the same network and data, alternated; ``--sizes`` times one fine-tuning epoch at 128, 160, 224 px.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
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


def features(X):
    """The frozen pretrained body's pooled features (the output layer's inputs) of X."""
    model = _body(tuple(X.shape[1:]))
    with torch.no_grad():
        return torch.cat([model(torch.from_numpy(X[i:i + 64])) for i in range(0, len(X), 64)]).numpy()


@functools.lru_cache(maxsize=2)
def _body(grid: tuple):
    """The pretrained network without its output layer, in eval mode: built and loaded once per grid shape."""
    from gridcnn.backbone import resolve_spec
    from gridcnn.backbone.pretrained import load_pretrained

    spec = resolve_spec(ARCH)
    model = spec.build(grid, 2)
    load_pretrained(model, spec, ARCH, True)
    model.head = nn.Sequential(*list(model.head.children())[:-1])  # pooled features, no output layer
    return model.eval()


def probe(X, y, Xt, yt):
    """Frozen pretrained body, pooled features, logistic regression (the issue's 72.1% baseline)."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(max_iter=3000, C=1.0).fit(features(X), y)
    return lr.score(features(Xt), yt)


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
    out.append((f"{ARCH} fine-tuned (defaults: head from the probe, every layer trained, body_lr_factor 0.1, "
                f"batch norm kept, flip + shift), {args.epochs} epochs", clf.score(Xt, yt), sec))
    if args.ablate:
        rule = fitting.fine_tune_rule
        variants = [("fastai's fine_tune: 1 frozen epoch, random head, batch norm trained after (the old default)",
                     dict(freeze_epochs=1), dict(probe=False)),
                    ("random head (no probe), batch norm kept", {}, dict(probe=False)),
                    ("head from the probe, batch norm trained", {}, dict(keep_statistics=False)),
                    ("one rate for all stages (body_lr_factor=1)", dict(body_lr_factor=1.0), None),
                    ("lr 3e-4, no shift", dict(lr=3e-4, augment_shift=0), None),
                    ("no flip", dict(augment_flip=False), None)]
        for name, kw, change in variants:
            if change is not None:  # the rule's parts that no parameter turns off on its own
                fitting.fine_tune_rule = lambda est, change=change: dataclasses.replace(rule(est), **change)
            try:
                (clf, sec) = timed(lambda: fine_tuned(args.epochs, args.seed, **kw).fit(X, y))
            finally:
                fitting.fine_tune_rule = rule
            out.append((f"fine-tuned, {name}", clf.score(Xt, yt), sec))
    if args.scratch:
        (clf, sec) = timed(lambda: GridCNNClassifier(max_epochs=args.scratch_epochs, augment_flip=True,
                                                     random_state=args.seed).fit(X, y))
        out.append((f"default network from scratch, {args.scratch_epochs} epochs", clf.score(Xt, yt), sec))
    return out


def aspect_probe(seed_dir: Path) -> None:
    """The probe on the drawings' original files (transparent, of every shape) through the image adapter at 128 px,
    squashed, centre-cropped or padded: which shape zero-config gives the pretrained network."""
    import shutil

    from sklearn.linear_model import LogisticRegression

    from gridcnn.adapters.image import ImageGrid

    root = cache_dir() / f"clipart-v{clipart._VERSION}"
    files = {}
    for part in ("train", "test"):
        for name in clipart.CLASSES:
            originals = {f.stem: f for f in clipart.drawings(clipart.ROOT / name)}
            for f in sorted((root / part / name).glob("*.png")):
                dest = seed_dir / part / name / f.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(originals[f.stem], dest)
                files.setdefault(part, []).append((str(dest), name))
    (paths, y), (tpaths, yt) = (list(zip(*files[p])) for p in ("train", "test"))
    for aspect in ("squash", "crop", "pad"):
        adapter = ImageGrid(size=128, mode="RGB", aspect=aspect)
        X, Xt = adapter.fit_transform(list(paths)), adapter.transform(list(tpaths))
        F, Ft = features(X), features(Xt)
        acc = LogisticRegression(max_iter=3000).fit(F, np.array(y)).score(Ft, np.array(yt))
        print(f"| {aspect} | {acc:.1%} |", flush=True)


def mnist_rows(n: int, epochs: int, seed: int) -> None:
    """MNIST with ``n`` training digits: the ImageNet network fine-tuned (digits padded to 32 x 32, the gray
    channel into the summed colour stem) against the default network from scratch, accuracy on 2,000 test digits."""
    from gridcnn.data.images import load_mnist

    X, y = load_mnist("train")
    Xt, yt = load_mnist("test")
    X, y, Xt, yt = X[:n], y[:n], Xt[:2000], yt[:2000]
    pad = lambda A: np.pad(np.asarray(A, np.float32).reshape(len(A), 1, 28, 28), ((0, 0),) * 2 + ((2, 2),) * 2)  # noqa: E731
    X, Xt = pad(X), pad(Xt)
    for name, clf in ((f"{ARCH} pretrained, fine-tuned, {epochs} epochs", fine_tuned(epochs, seed, augment_flip=False)),
                      ("default network from scratch, max_epochs='auto'", GridCNNClassifier(random_state=seed))):
        (fitted, sec) = timed(lambda: clf.fit(X, y))
        print(f"| {name} | {fitted.score(Xt, yt):.1%} | {sec:.0f} | {fitted.n_iter_} |", flush=True)


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
    """(fit's seconds, the hand loop's, the probe's): the same training, alternated, best of ``repeats``; the probe
    (one forward pass, which the hand loop does not make) timed on its own."""
    from gridcnn.training.probe import probe_head

    y_idx = np.unique(y, return_inverse=True)[1]
    ours, hand, probes = [], [], []
    rule = fitting.fine_tune_rule
    fitting.fine_tune_rule = lambda est: dataclasses.replace(rule(est), probe=False)
    try:
        for _ in range(repeats):  # alternated, so a change in the machine's load hits both alike
            ours.append(timed(lambda: GridCNNClassifier(ARCH, pretrained=True, max_epochs=epochs, batch_size=32,
                                                        freeze_epochs=0, body_lr_factor=1.0, augment_shift=0,
                                                        random_state=0).fit(X, y_idx))[1])
            hand.append(timed(lambda: hand_loop(X, y_idx, epochs, 0))[1])
    finally:
        fitting.fine_tune_rule = rule
    from gridcnn.backbone import resolve_spec
    from gridcnn.backbone.pretrained import load_pretrained
    from gridcnn.training.loop import TensorSource

    spec = resolve_spec(ARCH)
    model = spec.build(X.shape[1:], int(y_idx.max()) + 1)
    load_pretrained(model, spec, ARCH, True)
    source = TensorSource.from_arrays(X, y_idx, torch.device("cpu"))
    for _ in range(repeats):
        probes.append(timed(lambda: probe_head(model, source, int(y_idx.max()) + 1, 32))[1])
    return min(ours), min(hand), min(probes)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ablate", action="store_true")
    ap.add_argument("--scratch", action="store_true")
    ap.add_argument("--scratch-epochs", type=int, default=30)
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--speed-epochs", type=int, default=2)
    ap.add_argument("--sizes", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mnist", type=int, default=0, help="MNIST with this many training digits, then stop")
    ap.add_argument("--aspect", action="store_true", help="probe the original files squashed, cropped, padded")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.mnist:
        print(machine_line(), f"\n\nMNIST, {args.mnist} training digits, 2,000 test digits\n")
        print("| model | test accuracy | fit time (s) | epochs |\n|---|---|---|---|", flush=True)
        return mnist_rows(args.mnist, args.epochs, args.seed)
    X, y, Xt, yt = data(args.size)
    print(machine_line())
    print(f"\nclipart: {len(X)} training and {len(Xt)} test drawings, {len(set(y))} classes, {args.size} px\n")
    print("| model | test accuracy | fit time (s) |\n|---|---|---|", flush=True)
    if args.speed:
        ours, hand, probe_s = speed(X, y, args.speed_epochs, 3)
        print(f"\n{args.speed_epochs} epochs: fit {args.speed_epochs * len(X) / ours:.1f} pictures/s, hand loop "
              f"{args.speed_epochs * len(X) / hand:.1f}: {ours / hand:.2f}x its time; the probe {probe_s:.1f} s "
              f"({len(X) / probe_s:.0f} pictures/s, one forward pass)", flush=True)
        return
    if args.sizes:
        for s in (128, 160, 224):
            Xs = torch.nn.functional.interpolate(torch.from_numpy(X[:64]), size=s, mode="bilinear").numpy()
            ys = np.arange(64) % 8
            _, sec = timed(lambda: hand_loop(Xs, ys, 1, 0))
            print(f"{s} px: {64 / sec:.1f} pictures/s (one epoch of 64, forward and backward)", flush=True)
    if args.aspect:
        import tempfile

        print("\n| original files at 128 px | probe accuracy |\n|---|---|")
        with tempfile.TemporaryDirectory() as tmp:
            aspect_probe(Path(tmp))
        print()
    rows(args, X, y, Xt, yt)
    print("\n" + machine_line())


if __name__ == "__main__":
    main()
