"""`auto_recipe`: look at a data path and choose the adapter, network and training for it, as a `Recipe`.

What ``gridcnn fit PATH`` runs, and what a notebook calls for the same decision. The rules, by kind of path:

* a folder with one subfolder per class, of images or of sound files (a ``train/`` + ``test/`` pair of such
  folders is used as the split): the image adapter (every image resized to the most common size, its longer side
  at most 64 pixels) or the spectrogram adapter (clips cut or padded to the 95th percentile of their durations);
* a CSV, TSV or Parquet table: one text column -> the embedding adapter and Kim's CNN; numeric columns -> the
  suitability check first (a table whose columns could be permuted is refused with its evidence, unless
  ``force``), then the sequence adapter (columns in their order as a 1 x L signal);
* an .npz holding ``X`` and ``y`` (or ``X_train``/``y_train`` + ``X_test``/``y_test``), or an .npy of samples with
  its labels in another .npy (``target``, by default ``y.npy`` or ``labels.npy`` beside it): grids as they are, or
  rows checked like a numeric table. An .npy is memory-mapped, so samples larger than memory train from disk.

Everything else is the estimator's defaults (``max_epochs="auto"``, one-cycle rate, augmentation for the modality)
with a stratified 10% validation split, so the run folder's curves show validation beside training.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gridcnn.exceptions import GridCNNError
from gridcnn.workflow.recipes import Recipe, parse_recipe

IMAGE_MAX_SIDE = 64  # CPU-sized grids: a 64 x 64 image trains in seconds per epoch on a laptop core
AUDIO_MAX_SECONDS = 10.0


@dataclass
class AutoRecipe:
    """What `auto_recipe` chose: the recipe to run and, for people, one line per choice with its reason."""

    recipe: Recipe
    choices: list[tuple[str, str, str]] = field(default_factory=list)  # (what, chosen, why)
    kind: str = ""  # "image", "audio", "text", "sequence" or "grid": what errors.png draws


def auto_recipe(path, target=None, *, force=False, random_state=0) -> AutoRecipe:
    """Choose adapter, network, epochs and augmentation for the data at ``path``.

    Parameters
    ----------
    path : str or Path
        A class-per-folder tree of images or sound files (optionally ``train/`` + ``test/``), a CSV/TSV/Parquet
        table, an .npz of arrays, or an .npy of samples.
    target : str, default=None
        The label column of a table; default: the column named like a label ("label", "target", "class", ...). For
        an .npy of samples, the .npy file of their labels (default: ``y.npy`` or ``labels.npy`` beside it).
    force : bool, default=False
        Train on a numeric table even when the suitability check finds no order in its columns.
    random_state : int, default=0
        Seeds the split and the training.

    Returns
    -------
    auto : AutoRecipe
        ``auto.recipe`` is an ordinary `Recipe` (``auto.recipe.to_toml()`` writes it); ``auto.choices`` explains it.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> rng = np.random.default_rng(0)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "signals.npz"
    >>> np.savez(path, X=rng.random((40, 1, 8, 8), dtype=np.float32), y=np.arange(40) % 2)
    >>> auto = auto_recipe(path)
    >>> auto.recipe.data["path"] == str(path), auto.kind
    (True, 'grid')
    """
    p = Path(path).expanduser()
    if p.is_dir():
        return _folder(p, random_state)
    if not p.exists():
        raise GridCNNError(f"{p} does not exist. Give a folder with one subfolder per class, a .csv/.tsv/.parquet "
                           "table or an .npz file.")
    suffix = p.suffix.lower()
    if suffix in (".csv", ".tsv", ".parquet"):
        return _table(p, target, force, random_state)
    if suffix == ".npz":
        return _npz(p, force, random_state)
    if suffix == ".npy":
        return _npy(p, target, force, random_state)
    raise GridCNNError(f"gridcnn cannot tell what {p.name} holds: expected a folder, a .csv, .tsv, .parquet, .npz or "
                       ".npy file (or a recipe ending in .toml).")


# -- folders --------------------------------------------------------------------------------------------------------


def _folder(p: Path, seed: int) -> AutoRecipe:
    from gridcnn.adapters.audio.clips import AUDIO_EXTENSIONS
    from gridcnn.adapters.image import IMAGE_EXTENSIONS
    from gridcnn.data.folders import list_class_folder

    split = (p / "train").is_dir() and (p / "test").is_dir()
    root = p / "train" if split else p
    files = [f for f in p.rglob("*") if f.is_file() and not any(part.startswith(".") for part in f.parts[len(p.parts):])]
    images = [f for f in files if f.suffix.lower() in IMAGE_EXTENSIONS]
    sounds = [f for f in files if f.suffix.lower() in AUDIO_EXTENSIONS]
    if not images and not sounds:
        raise GridCNNError(f"{p} holds no image or sound files ({len(files)} other file(s)). Expected one subfolder per "
                           "class of images (.png, .jpg, ...) or sound files (.wav, .flac, ...).")
    if images and sounds:
        raise GridCNNError(f"{p} mixes {len(images)} image and {len(sounds)} sound files (such as {images[0].name} and "
                           f"{sounds[0].name}). Keep one kind per data folder.")
    kind = "image" if images else "audio"
    paths, labels = list_class_folder(root, IMAGE_EXTENSIONS if images else AUDIO_EXTENSIONS)
    classes = Counter(labels)
    if len(classes) < 2:
        raise GridCNNError(f"{root} has one class only ({next(iter(classes))!r}, {len(paths)} files): a classifier needs "
                           "at least 2. Add a subfolder per class.")
    data = {"path": str(p), "random_state": seed}
    choices = [("data", f"{len(paths)} {'images' if images else 'sound files'} in {len(classes)} classes",
                f"class subfolders of {root}")]
    if split:
        data.update(train_split="train", test_split="test")
        choices.append(("split", "train/ and test/", "the folder has both"))
    else:
        data["test_fraction"] = 0.2
        choices.append(("split", "20% held out for the test, stratified", "no train/ + test/ pair"))
    adapter, why = (_image_adapter if images else _audio_adapter)(paths)
    choices.append(("adapter", _describe(adapter), why))
    estimator = {"random_state": seed, "validation_fraction": 0.1}
    return _finish(data, adapter, estimator, choices, kind, p)


def _image_adapter(paths):
    from PIL import Image

    sample = paths[:: max(1, len(paths) // 200)]
    sizes, modes = Counter(), Counter()
    for f in sample:
        with Image.open(f) as im:
            sizes[(im.height, im.width)] += 1
            modes[im.mode] += 1
    (h, w), _ = sizes.most_common(1)[0]
    scale = min(1.0, IMAGE_MAX_SIDE / max(h, w))
    size = [max(1, round(h * scale)), max(1, round(w * scale))]
    gray = all(m in ("L", "1", "I;16", "I", "F", "LA") for m in modes)
    why = f"most common size {h}x{w}" + (f", scaled to at most {IMAGE_MAX_SIDE} pixels" if scale < 1 else "")
    return {"name": "image", "size": size, "mode": "L" if gray else "RGB"}, why


def _audio_adapter(paths):
    import soundfile as sf

    sample = paths[:: max(1, len(paths) // 200)]
    durations, rates = [], Counter()
    for f in sample:
        try:
            info = sf.info(str(f))
        except Exception:  # formats soundfile cannot read are decoded by the adapter; they just do not vote here
            continue
        durations.append(info.frames / info.samplerate)
        rates[info.samplerate] += 1
    duration = float(np.percentile(durations, 95)) if durations else 1.0
    duration = round(min(max(duration, 0.1), AUDIO_MAX_SECONDS), 2)
    rate = 16000 if not rates or rates.most_common(1)[0][0] >= 16000 else rates.most_common(1)[0][0]
    hop = max(64, int(rate * duration / 64))  # about 64 time frames whatever the clip length
    adapter = {"name": "spectrogram", "sample_rate": rate, "duration": duration, "n_fft": 512 if rate >= 16000 else 256,
               "hop_length": hop, "n_mels": 40}
    return adapter, f"95% of the clips are at most {duration} s; about 64 frames of 40 mel bands"


# -- tables and arrays ----------------------------------------------------------------------------------------------

LABEL_NAMES = ("label", "labels", "target", "class", "y", "category", "sentiment", "outcome")


def read_frame(path, header_only=False):
    """A CSV, TSV or Parquet file as a pandas DataFrame (only its columns when ``header_only``)."""
    import pandas as pd

    from gridcnn.data.reader import PARQUET_INSTALL

    p = Path(path)
    if p.suffix.lower() == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise GridCNNError(f"{p} is a Parquet file, which needs pyarrow. Install it: {PARQUET_INSTALL}.") from None
        return pd.DataFrame(columns=pq.read_schema(p).names) if header_only else pd.read_parquet(p)
    return pd.read_csv(p, sep="\t" if p.suffix.lower() == ".tsv" else ",", nrows=0 if header_only else None)


def find_target(frame, path, target=None) -> str:
    """The label column: ``target`` (checked), else the one column named like a label (`LABEL_NAMES`)."""
    from gridcnn._registry import did_you_mean

    columns = [str(c) for c in frame.columns]
    if target is not None:
        if target not in frame.columns:
            raise GridCNNError(f"{path} has no column {target!r}.{did_you_mean(target, columns)} "
                               f"Columns: {', '.join(columns[:20])}{', ...' if len(columns) > 20 else ''}.")
        return target
    lower = {c.lower(): c for c in columns}
    found = next((lower[n] for n in LABEL_NAMES if n in lower), None)
    if found is None:
        raise GridCNNError(
            f"{path}: which column holds the labels? None is named like one ({', '.join(LABEL_NAMES[:5])}, ...). "
            f"Pass --target COLUMN (target=COLUMN in Python); columns: {', '.join(columns[:20])}"
            f"{', ...' if len(columns) > 20 else ''}."
        )
    return found


def text_columns(frame) -> list:
    """Columns holding text (not numbers), in the frame's order."""
    import pandas as pd

    return [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]


def _table(p: Path, target, force: bool, seed: int) -> AutoRecipe:
    frame = read_frame(p)
    target = find_target(frame, p, target)
    y = frame.pop(target).to_numpy()
    _check_labels(y, p, target)
    data = {"path": str(p), "target": target, "test_fraction": 0.2, "random_state": seed}
    choices = [("data", f"{len(y)} rows, {frame.shape[1]} columns, {len(np.unique(y))} classes", f"label column {target!r}")]
    text = text_columns(frame)
    if text:
        if len(frame.columns) > 1:
            raise GridCNNError(f"{p} mixes a text column ({text[0]!r}) with {len(frame.columns) - 1} other column(s): "
                               "give a table of the texts and the labels only, or of numbers only.")
        choices.append(("split", "20% held out for the test, stratified", "one table"))
        adapter = {"name": "embedding", "embedding": "minilm-static"}
        choices.append(("adapter", _describe(adapter), f"column {text[0]!r} holds text"))
        # The text recipe's measured settings (recipes/text.toml): Kim's batch and AdamW decay steady the seeds.
        estimator = {"architecture": "kim", "batch_size": 50, "weight_decay": 0.05, "random_state": seed,
                     "validation_fraction": 0.1}
        return _finish(data, adapter, estimator, choices, "text", p)
    X = frame.to_numpy(np.float32)
    choices.append(("split", "20% held out for the test, stratified", "one table"))
    return _rows(X, y, data, choices, force, seed, p)


def _npz(p: Path, force: bool, seed: int) -> AutoRecipe:
    with np.load(p, allow_pickle=False) as z:
        names = set(z.files)
        if {"X", "y"} <= names:
            X, y, split = z["X"], z["y"], False
        elif {"X_train", "y_train", "X_test", "y_test"} <= names:
            X, y, split = z["X_train"], z["y_train"], True
        else:
            raise GridCNNError(f"{p} holds {sorted(names)}; expected arrays X and y, or X_train, y_train, X_test and "
                               "y_test.")
    return _arrays(X, y, {"path": str(p), "random_state": seed}, split, force, seed, p)


LABEL_FILES = ("y.npy", "labels.npy")  # where the labels of an .npy of samples are looked for by default


def find_labels(p: Path, target) -> str:
    """The labels file of the samples in ``p`` (an .npy): ``target``, else the one of `LABEL_FILES` beside it."""
    from gridcnn.data.reader import labels_path

    if target is not None:
        if not str(target).lower().endswith(".npy"):
            raise GridCNNError(f"--target {target} names a column, but {p.name} is an .npy array: name the labels' "
                               "own .npy file (--target y.npy), one label per sample.")
        return labels_path(p, target)
    found = [p.parent / n for n in LABEL_FILES if (p.parent / n).is_file() and n != p.name]
    if not found:
        raise GridCNNError(f"{p} holds samples but where are the labels? No {' or '.join(LABEL_FILES)} beside it. Pass "
                           "--target LABELS.npy (target= in Python), one label per sample, or save both with "
                           "numpy.savez('data.npz', X=X, y=y).")
    return str(found[0])


def _npy(p: Path, target, force: bool, seed: int) -> AutoRecipe:
    from gridcnn.data.reader import read_npy

    labels = find_labels(p, target)
    X, y = read_npy(p, labels).labelled()
    data = {"path": str(p), "target": labels, "random_state": seed}
    return _arrays(X, y, data, False, force, seed, p)


def _arrays(X, y, data, split: bool, force: bool, seed: int, p: Path) -> AutoRecipe:
    """Samples ``X`` with labels ``y`` from an array file: grids as they are, flat rows checked like a table."""
    _check_labels(y, p, "y")
    data.update({"train_split": "train", "test_split": "test"} if split else {"test_fraction": 0.2})
    choices = [("data", f"{len(y)} arrays of shape {tuple(X.shape[1:])}, {len(np.unique(y))} classes", p.name),
               ("split", "X_test, y_test" if split else "20% held out for the test, stratified",
                "the file has them" if split else "one set of arrays")]
    if X.ndim >= 3:
        choices.append(("adapter", "none", f"the arrays are already grids {tuple(X.shape[1:])}"))
        return _finish(data, None, {"random_state": seed, "validation_fraction": 0.1}, choices, "grid", p)
    return _rows(np.asarray(X).reshape(len(X), -1).astype(np.float32), y, data, choices, force, seed, p)


def _rows(X, y, data, choices, force, seed, p) -> AutoRecipe:
    """Numeric rows: a 1 x L sequence when the suitability check finds order in the columns (or ``force``)."""
    from gridcnn.suitability import check_suitability

    report = check_suitability(X, y, random_state=seed)
    if not report.suitable and not force:
        raise GridCNNError(f"{p}: no grid structure a CNN could use: {report.evidence[0]} {report.recommendation} "
                           "(--force trains a CNN anyway.)")
    why = "the suitability check found order along the columns" if report.suitable else "--force (the check found none)"
    adapter = {"name": "sequence", "standardize": "channel"}
    choices.append(("adapter", _describe(adapter) + f", 1 x {X.shape[1]} grid", why))
    return _finish(data, adapter, {"random_state": seed, "validation_fraction": 0.1}, choices, "sequence", p)


def _check_labels(y, p, column) -> None:
    values, counts = np.unique(np.asarray(y).astype(str), return_counts=True)
    if len(values) < 2:
        raise GridCNNError(f"{p}: column {column!r} holds one class only ({values[0]!r}): a classifier needs at least 2.")


def _describe(adapter: dict) -> str:
    return adapter["name"] + "".join(f", {k}={v}" for k, v in adapter.items() if k != "name")


def training_choice(estimator: dict, overridden=()) -> tuple[str, str, str]:
    """The table's training row for a recipe's ``estimator`` section (GridCNNClassifier's defaults where it is
    silent); ``overridden``: the keys --set gave."""
    from gridcnn.estimator.classifier import GridCNNClassifier

    e = {**GridCNNClassifier().get_params(), **estimator}
    why = ("a step budget sized to the data; see GridCNNClassifier" if e["max_epochs"] == "auto" else
           "as given" if "max_epochs" in overridden else "the recipe's")
    return ("training", f"max_epochs={e['max_epochs']}, batch_size={e['batch_size']}, {e['lr_schedule']} rate to "
            f"lr={e['lr']}", why)


def _finish(data, adapter, estimator, choices, kind, p) -> AutoRecipe:
    raw = {"data": data, "estimator": estimator}
    if adapter is not None:
        raw["adapter"] = adapter
    recipe = parse_recipe(raw, source=str(p))  # the data it ran on, which names the run folder (runs/topics-...)
    net = estimator.get("architecture") or "simple"
    choices.append(("network", f"{net} preset", "Kim's CNN for texts" if net == "kim" else "the default CNN"))
    choices.append(training_choice(estimator))
    aug = {"image": "random shift", "audio": "time shift + SpecAugment masks", "sequence": "random shift",
           "text": "none", "grid": "chosen from the grid's shape"}[kind]
    choices.append(("augmentation", aug, f"{kind} grids"))
    choices.append(("validation", "10% of the training rows, stratified", "curves beside training"))
    return AutoRecipe(recipe=recipe, choices=choices, kind=kind)
