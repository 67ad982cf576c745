"""A small colour picture set built offline from Debian's ``openclipart-png``: clip art in 8 categories, drawn by many
artists, one picture per drawing so that no drawing is in both splits.

The package holds near-copies of one drawing named ``name_01``, ``name_02``: they are grouped by that stem and one
file per group is kept, so the split is by drawing. Its ``animals``, ``food``, ``recreation`` and ``computer``
folders are never read: they are kept for checks the project does not tune on.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np

from gridcnn.data.registry import cache_dir, register_dataset
from gridcnn.exceptions import GridCNNError

ROOT = Path("/usr/share/openclipart/png")
CLASSES = ("buildings", "geography", "office", "people", "plants", "signs_and_symbols", "tools", "transportation")
RESERVED = ("animals", "food", "recreation", "computer")  # never train or tune on these
PER_CLASS, TRAIN_PER_CLASS = 57, 38  # 8 x 38 = 304 training and 8 x 19 = 152 test drawings
_COPY = re.compile(r"_\d\d$")
_VERSION = 1  # bump when the recipe below changes, so old caches are rebuilt


@register_dataset(
    "clipart",
    modality="image",
    splits=("train", "test"),
    adapter="image",
    description="Colour clip art in 8 categories from Debian's openclipart-png (304 + 152 drawings, built offline).",
)
def load_clipart(split=None):
    """Clip-art pictures as PNG paths (128 px squares, on white) and their class names, built into the cache on
    first use from ``/usr/share/openclipart/png`` (``apt-get install openclipart-png``); "test" holds other drawings
    than "train", None both."""
    root = cache_dir() / f"clipart-v{_VERSION}"
    if not (root / "test").is_dir():
        tmp = root.with_name(root.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)  # a build cut short
        build(tmp, 128)
        tmp.rename(root)
    paths, labels = [], []
    for part in (("train", "test") if split is None else (split,)):
        for folder in sorted(p for p in (root / part).iterdir() if p.is_dir()):
            files = sorted(folder.glob("*.png"))
            paths += [str(f) for f in files]
            labels += [folder.name] * len(files)
    return np.array(paths), np.array(labels)


def drawings(folder: Path) -> list[Path]:
    """One file per drawing under ``folder`` (the first of its near-copies), in a fixed order."""
    groups: dict[str, Path] = {}
    for path in sorted(folder.rglob("*.png")):
        groups.setdefault(_COPY.sub("", path.stem), path)  # by name alone: copies sit in several subfolders too
    return [groups[k] for k in sorted(groups)]


def picture(path: Path, size: int) -> np.ndarray:
    """The drawing on white, fitted into a ``size`` x ``size`` square (aspect kept), as (3, size, size) in [0, 1]."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGBA")
        im.thumbnail((size, size), Image.Resampling.LANCZOS)
        canvas = Image.new("RGBA", (size, size), (255, 255, 255, 255))
        canvas.alpha_composite(im, ((size - im.width) // 2, (size - im.height) // 2))
        return np.asarray(canvas.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255.0


def build(out: Path, size: int = 128, seed: int = 0) -> Path:
    """Write ``out/{train,test}/<class>/<drawing>.png`` (``size`` pixels square) and return ``out``."""
    from PIL import Image

    if not ROOT.is_dir():
        raise GridCNNError(f"The clipart data set is built from {ROOT}, which is not here. Install it with "
                           "`apt-get install openclipart-png`.")
    rng = np.random.default_rng(seed)
    found = {name: drawings(ROOT / name) for name in CLASSES}
    # a drawing filed under two categories (aiga_coffee_shop in transportation and signs) belongs to neither
    seen = Counter(_COPY.sub("", f.stem) for files in found.values() for f in files)
    for name in CLASSES:
        files = [f for f in found[name] if seen[_COPY.sub("", f.stem)] == 1]
        k = 0
        for i in rng.permutation(len(files)):
            if k == PER_CLASS:
                break
            path = files[i]
            try:
                with Image.open(path) as im:
                    if im.width * im.height > 40_000_000:  # a few posters of 600 megapixels: slow, or refused
                        continue
            except Image.DecompressionBombError:
                continue
            split = "train" if k < TRAIN_PER_CLASS else "test"
            dest = out / split / name / f"{path.stem}.png"
            dest.parent.mkdir(parents=True, exist_ok=True)
            arr = (picture(path, size).transpose(1, 2, 0) * 255).round().astype(np.uint8)
            Image.fromarray(arr).save(dest)
            k += 1
    return out


def load(root: Path, split: str, size: int | None = None):
    """(X, y): the pictures of ``root/split`` as float32 (n, 3, s, s) in [0, 1], and their class names."""
    from PIL import Image

    X, y = [], []
    for folder in sorted(p for p in (root / split).iterdir() if p.is_dir()):
        for path in sorted(folder.glob("*.png")):
            with Image.open(path) as im:
                im = im.convert("RGB")
                if size is not None and im.size != (size, size):
                    im = im.resize((size, size), Image.Resampling.BILINEAR)
                X.append(np.asarray(im, dtype=np.float32).transpose(2, 0, 1) / 255.0)
            y.append(folder.name)
    return np.stack(X), np.array(y)
