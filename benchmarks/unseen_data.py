"""Data gridcnn has never seen, generated offline: class folders of images (shapes/, with train/ and test/) and of
sound files (sounds/), a CSV of short texts (reviews.csv), a table of unordered numbers (table.csv) and one of
ordered signals (signals.csv).

Run:  python -m benchmarks.unseen_data DIR [N]    (N examples per class and split; default 60)
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from PIL import Image


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, metavar="DIR", help="folder to write the data sets into")
    parser.add_argument("n", type=int, nargs="?", default=60, metavar="N", help="examples per class and split")
    args = parser.parse_args(argv)
    root, n = args.root, args.n
    rng = np.random.default_rng(0)
    # images: 24x24 gray shapes (circle, square, cross), random position/size/noise; train/ + test/
    for split, m in (("train", n), ("test", n // 3)):
        for label in ("circle", "square", "cross"):
            d = root / "shapes" / split / label; d.mkdir(parents=True, exist_ok=True)
            for i in range(m):
                yy, xx = np.mgrid[:24, :24]
                r = rng.uniform(4, 8); cy, cx = rng.uniform(8, 16, 2)
                if label == "circle": img = ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r)
                elif label == "square": img = (abs(yy - cy) < r * .8) & (abs(xx - cx) < r * .8)
                else: img = ((abs(yy - cy) < 1.5) & (abs(xx - cx) < r)) | ((abs(xx - cx) < 1.5) & (abs(yy - cy) < r))
                img = np.clip(img * 200 + rng.normal(30, 25, img.shape), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(d / f"{i}.png")
    # sounds: 0.5 s clips at 16 kHz: rising chirp, falling chirp, steady tone, noise bursts
    sr = 16000; t = np.arange(int(0.5 * sr)) / sr
    for label in ("up", "down", "tone", "burst"):
        d = root / "sounds" / label; d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            f0 = rng.uniform(300, 900); dur = rng.uniform(0.3, 0.5); k = t < dur
            if label == "up": x = np.sin(2 * np.pi * (f0 * t + 800 * t * t))
            elif label == "down": x = np.sin(2 * np.pi * (f0 * 2 * t - 800 * t * t))
            elif label == "tone": x = np.sin(2 * np.pi * f0 * t)
            else: x = rng.normal(0, 1, t.size) * (np.sin(2 * np.pi * 8 * t) > 0)
            x = (x * k * 0.5 + rng.normal(0, 0.05, t.size)).astype(np.float32)
            sf.write(d / f"{i}.wav", x, sr)
    # texts: short reviews from word lists
    pos = "great wonderful loved excellent superb delightful moving brilliant charming".split()
    neg = "awful boring hated terrible dull clumsy tedious painful bland".split()
    filler = "the movie film plot actors story was and a really quite with an ending cast".split()
    rows = []
    for i in range(n * 6):
        lab = i % 2; words = list(rng.choice(filler, rng.integers(5, 12)))
        for _ in range(rng.integers(1, 3)): words.insert(rng.integers(len(words) + 1), rng.choice(pos if lab else neg))
        if rng.random() < 0.3: words.insert(0, "not"); lab = 1 - lab  # negation makes order matter
        rows.append((" ".join(words), "positive" if lab else "negative"))
    pd.DataFrame(rows, columns=["review", "sentiment"]).to_csv(root / "reviews.csv", index=False)
    # numeric table: unordered features (tabular), label from two columns
    X = rng.normal(size=(n * 6, 12)); y = (X[:, 3] + X[:, 7] * 0.5 > 0).astype(int)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(12)]); df["outcome"] = y
    df.to_csv(root / "table.csv", index=False)
    # ordered numeric table: noisy signals of 48 samples, 3 classes by waveform
    L = 48; s = np.arange(L)
    sig = []
    for i in range(n * 6):
        c = i % 3; ph = rng.uniform(0, 2 * np.pi); sh = rng.integers(0, 20)
        base = [np.sin(2 * np.pi * s / 12 + ph), np.sign(np.sin(2 * np.pi * s / 12 + ph)), ((s + sh) % 12) / 6 - 1][c]
        sig.append(np.r_[base + rng.normal(0, 0.6, L), c])
    pd.DataFrame(sig, columns=[f"t{i}" for i in range(L)] + ["label"]).to_csv(root / "signals.csv", index=False)
    print("written to", root)


if __name__ == "__main__":
    main()
