"""Pictures of mixed aspect ratios: ImageGrid's ``aspect`` = squash, crop or pad, side by side on the same split.

The pictures are drawn here (no download): white shapes on noisy dark canvases whose aspect ratio varies from 1:2
(portrait) to 2:1 (landscape), anywhere on the canvas. The four classes differ in their proportions (circle,
square, a rectangle twice as wide as tall, one twice as tall as wide), the property that squashing a portrait or a
landscape picture into a square changes. Each setting trains the zero-config network on the same pictures.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from PIL import Image, ImageDraw

from benchmarks.common import machine_line

CLASSES = ("circle", "square", "wide", "tall")


def picture(kind: str, rng) -> np.ndarray:
    """One gray picture of a ``kind`` shape, on a canvas 48 high and 24-96 wide (or 24-96 high and 48 wide)."""
    ratio = 2 ** rng.uniform(-1, 1)
    h, w = (48, int(48 * ratio)) if rng.random() < 0.5 else (int(48 / ratio), 48)
    img = Image.fromarray(rng.integers(0, 70, (h, w), dtype=np.uint8))
    side = rng.uniform(0.25, 0.45) * min(h, w)
    sh, sw = {"circle": (side, side), "square": (side, side), "wide": (side * 0.7, side * 1.4),
              "tall": (side * 1.4, side * 0.7)}[kind]
    top, left = rng.uniform(0, h - sh), rng.uniform(0, w - sw)
    draw = ImageDraw.Draw(img)
    box = (left, top, left + sw, top + sh)
    (draw.ellipse if kind == "circle" else draw.rectangle)(box, fill=int(rng.integers(200, 256)))
    return np.asarray(img)


def data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % len(CLASSES)
    return [picture(CLASSES[k], rng) for k in y], y


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=400, help="training pictures (the test has half as many)")
    parser.add_argument("--size", type=int, default=32, help="the grid's side")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args(argv)
    from sklearn.pipeline import make_pipeline

    from gridcnn import GridCNNClassifier
    from gridcnn.adapters import ImageGrid

    X, y = data(args.n, 0)
    X_test, y_test = data(args.n // 2, 1)
    rows = {}
    for aspect in ("squash", "crop", "pad"):
        for seed in args.seeds:
            t = time.perf_counter()
            model = make_pipeline(ImageGrid(size=args.size, aspect=aspect),
                                  GridCNNClassifier(max_epochs=args.epochs, random_state=seed))
            acc = model.fit(X, y).score(X_test, y_test)
            rows.setdefault(aspect, []).append((acc, time.perf_counter() - t))
            print(aspect, seed, f"{acc:.4f}", flush=True)
    print(machine_line())
    print(f"\n{args.n} training and {args.n // 2} test pictures, {args.size}x{args.size} grids, {args.epochs} epochs, "
          f"seeds {args.seeds}\n\n| aspect | test accuracy per seed | mean | fit s (mean) |\n|---|---|---|---|")
    for aspect, r in rows.items():
        accs = [a for a, _ in r]
        print(f"| {aspect} | {', '.join(f'{a:.1%}' for a in accs)} | {statistics.mean(accs):.1%} | "
              f"{statistics.mean(s for _, s in r):.0f} |")


if __name__ == "__main__":
    main()
